"""cryptoarena: does an AI forecaster beat classical trading algorithms after fees?"""

__version__ = "0.1.0"
