"""The book's side of the package: what the notebooks show and only they import.

Tables and figures beside the paper's (``report``, ``report_q3``), the claims (``claims``), where the sources
disagree (``sources``), the deviations list (``deviations``) and the reference pages (``pages``). Nothing in
the pipeline (data, models, features, protocols, analysis, pipeline) imports from here.
"""
