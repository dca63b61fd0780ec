from openglacier.cli.main import main

main()
