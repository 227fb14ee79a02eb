from mtst.cli import main

main()
