"""Who may do what to a vault and how much may be retrieved: the IAM policy
language (`policy`, its condition operators in `conditions`), the vault access
policy and vault lock state machine (`vault_policies`), the guard that decides
every vault-scoped request with them (`access`), and the account's data retrieval
policy and Expedited capacity checks of InitiateJob (`retrieval_limits`).
"""
