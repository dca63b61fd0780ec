"""Glacier Select: a job's request validated and run (`jobs`), its SQL parsed,
checked and translated to SQLite (`sql`, one handler per construct in `nodes`,
static types in `types`), and the values and batch evaluator at run time
(`evaluate`). Imports nothing on its own, so importing the package stays cheap
until a Select job needs sqlglot.
"""
