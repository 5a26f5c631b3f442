"""``cnnkeras demo NAME``: the lecture's claims, measured.

Each demo trains small networks that differ only in the block in question, on the embedded
MNIST sample (28x28), over several seeds, with the same optimizer, batches and epochs, and
returns a table, the verdict (did the claim hold at this scale?) and a plot of the training
curves side by side (``transfer``: a pre-trained base against training from scratch). The
defaults take a few minutes on a 2-core CPU; every size is a parameter, so the tests run each
demo in a reduced form.

Every network is built from Keras layers in the functional API, in the demo's own module, so
that the one difference is visible in the code. Importing this package imports no
TensorFlow: ``DEMOS`` declares the demos, and a demo's module is imported when it runs.
"""

from cnnkeras.demos._registry import DEMOS, SEEDS, Demo, demo_function, register_demo
from cnnkeras.demos._run import demo_text, run_demo

__all__ = ["DEMOS", "SEEDS", "Demo", "demo_function", "demo_text", "register_demo", "run_demo"]
