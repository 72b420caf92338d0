from reportgen.cli import main

if __name__ == "__main__":  # also imported by worker processes (spawn), which must not build
    main()
