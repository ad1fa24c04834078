"""A strategy for the executor tests: trains like ``scratch``, sleeps ``sleep`` seconds per step (a cell slow
enough to interrupt), and kills its own process with SIGKILL at step ``at`` (a crashed or pre-empted worker)
when a file named ``armed`` lies in a ``dies-once`` folder under the active context's data roots; it removes
the file first, so the rerun of the killed cell survives. Outside the tests no such folder exists."""

import os
import signal
import time

import ganbench


class DiesOnce(ganbench.Strategy):
    name = "dies-once"
    uses_source = False
    options = (
        ganbench.Option("at", int, 3, "the step to die at, when armed"),
        ganbench.Option("sleep", float, 0.0, "seconds to sleep at every step"),
    )

    def generator_loss(self, nets, step):
        time.sleep(self.config["sleep"])
        if step.step == self.config["at"]:
            for root in ganbench.data_roots():
                armed = root / self.name / "armed"
                if armed.is_file():
                    armed.unlink()
                    os.kill(os.getpid(), signal.SIGKILL)
        return None


@ganbench.hookimpl
def register_strategies(register):
    register(DiesOnce)
