"""The lab beside the product, never installed: the toy's world and training, the testbed that scores TAUE where the
truth is known, the benchmarks, and the scripts that draw the README's pictures. Run from the repository's root:
`python -m lab.testbed`, `python -m lab.train`, `python -m lab.benchmarks.<name>`."""
