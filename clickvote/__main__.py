from clickvote.cli import main

raise SystemExit(main())
