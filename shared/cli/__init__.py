"""``galleryctl``: the command-line tool. Each subcommand lives in its own module here."""
