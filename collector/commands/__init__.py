"""One module per `osmon` command: `configure(parser)` and `run(args)`."""
