"""The handlers of the authbench subcommands, one module per group."""
