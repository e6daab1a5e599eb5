from facebench.app.cli import main

if __name__ == "__main__":  # spawned workers re-import this module; only the real entry runs the CLI
    main()
