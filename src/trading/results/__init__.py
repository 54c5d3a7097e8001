"""Results of a run: statistics, the AI-vs-classical verdict, the report model and renderers.

``model.RunReport`` is the typed report (``arena report --format json`` and the dashboard);
``source.build_report`` fills it from the journal's read models and indexed equity windows.
"""
