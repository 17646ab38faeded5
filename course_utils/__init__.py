"""course_utils: the tested code behind the notebooks of "SFT Data: Principles and Practice".

Each module is named for the idea it teaches.  Notebooks import from here, so the code a
learner reads in the package is the code the tests check.
"""

from course_utils.runtime import RuntimeInfo, setup

__all__ = ["RuntimeInfo", "setup"]
__version__ = "0.1.0"
