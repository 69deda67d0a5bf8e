"""Figures: the plots of a sweep (:mod:`numasim.report.plots`) and of one run
(:mod:`numasim.report.run_plot`).  matplotlib is imported only inside these modules' functions."""
