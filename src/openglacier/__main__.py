from openglacier.cli.entry import cli

cli()
