"""`python -m ccup.report [results_dir ...]`: the report of the records of results folders
(ccup.report.files)."""
from ccup.report.files import main

if __name__ == "__main__":
    main()
