"""Policy automation: recording policies declared in a file, planned against the tenant, rendered as
PowerShell or applied to the simulator, and audited for coverage (who must be recorded, who is)."""
