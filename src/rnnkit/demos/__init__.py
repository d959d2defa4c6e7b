"""Demonstrations, run by the CLI: ``tour`` (``rnnkit tour``, ``rnnkit cells``: the layers, engines proven
equal, their speed) and ``names`` (``rnnkit demo``: a language model of first names, trained, sampled
and scored). Scripts that show the library at work; nothing else imports them."""
