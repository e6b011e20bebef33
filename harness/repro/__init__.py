"""The reproduction matrix: the expectations table (conditions x methods), running one cell
(a method, or the runner's scheduling), the cell's record, the matrix report and its
pages, and the pytest plugin (entry point `pytest11`) that other repositories use.
"""
