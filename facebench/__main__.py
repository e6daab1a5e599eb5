from facebench.cli import main

main()
