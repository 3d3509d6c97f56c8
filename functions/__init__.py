"""Azure Functions triggers: one blueprint per capability, each a thin shell around verbatim/."""
