"""`python -m benchmarks` (make bench): every benchmark in this folder, one after the other."""
from benchmarks import solve

solve.main()
