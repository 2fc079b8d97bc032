"""Sigma rules -> Polars expressions over our frames.

``loader`` (pySigma parsing, our rule trees, the disk cache), ``mapping`` (the processing pipeline as data,
rules/pipeline/*.yml), ``backend`` (tree -> Polars expression), ``hunt`` (rules over streamed frames ->
alert rows). pySigma is imported only when rules are parsed, so importing soc stays fast.
"""
