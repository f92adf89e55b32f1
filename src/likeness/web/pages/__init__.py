"""The pages, one router per audience: auth (login, logout, sign-up), review and overview (reviewers), portal (a
subject's own account), protect (anyone, with a case number and PIN instead of an account)."""
