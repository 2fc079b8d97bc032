"""The parser engine: specs from ``parsers/`` run by vectorised engines into ECS family frames.

Numba's OpenMP pool spins while it waits by default; next to Polars' own threads on a 2-core machine
that spinning steals the cores the other pool needs (runs measured 3-6x slower under load). Passive
waiting is set before Numba starts its pool, unless the user chose otherwise.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
