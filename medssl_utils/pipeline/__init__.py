"""From a validated ``Config`` to result rows: the paper's grid of (protocol, model, dataset) units.

``inputs``: dataset, split manifest, backbone, cached features and few-shot episodes of a run;
``transfer``: the few-shot, linear and finetune units (section 4.3); ``analyses``: the saliency, inversion and
invariance units (section 4.4); ``units``: the unit and the protocol record; ``grid``: plan, skip what is done,
run (here, sharded, or through an executor), collect.
"""
