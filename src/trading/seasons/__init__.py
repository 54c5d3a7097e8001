"""Seasons: consecutive UTC days of one arena config as one object (issue #19 item 2)."""
