"""Differential testing of gradx against PyTorch (float64) on random programs.

``oracle``: one row per gradx operation with its PyTorch counterpart, the domain it needs
and how its static parameters are drawn; every registered differentiable primitive is
mapped or excluded with a reason. ``programs``: random DAG programs over those rows (fan-out,
broadcasting, 0-d and size-1 shapes, repeated indices, setitem and in-place updates on
intermediates), drawn through hypothesis or a plain seeded generator. ``runner``: runs a
program in gradx and in PyTorch and compares values, gradients (backward, grad), second
order (create_graph, hessian, hvp) and forward mode (jvp). ``long_run``: many programs over
several processes, outside pytest.
"""
