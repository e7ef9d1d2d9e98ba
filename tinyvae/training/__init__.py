"""Training: the optimizers and the loop behind ``python -m tinyvae.train``.

Reading order: optim (SGD with momentum, Adam), annealing (KL weight schedules), fileio (atomic
writes), checkpoint (save and load a model, allow_pickle=False), runs (run folders), trainer
(RunConfig and the Trainer: epochs, the step, NaN checks, resume).
"""
