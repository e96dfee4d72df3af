"""verify: gradient checks against finite differences and KL closed forms.

    python -m verify            # every check, one line each, exit 1 on a failure

See gradcheck.py for the method, cases.py for what is checked, mutation.py
for the broken backwards the checker must catch.
"""
from .gradcheck import GradCheck, check_gradients, check_layer
from .suite import Outcome, hypothesis_settings, run_all
