from ltr.cli import main

raise SystemExit(main())
