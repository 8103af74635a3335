from grader.cli.main import main

raise SystemExit(main())
