"""Glacier jobs: InitiateJob, DescribeJob, ListJobs and GetJobOutput (`service`),
the InitiateJob body's rules (`params`), the one GlacierJobDescription renderer
(`description`), retrieval byte ranges, GetJobOutput windows and checksums from
stored leaves (`ranges`), verified windowed reads of archives and job outputs
(`reads`), and succeeded archive jobs' output plans kept in memory
(`output_plans`). Select jobs live in `domain/select/`; the runner that completes
jobs is the top-level `jobs/` package.
"""
