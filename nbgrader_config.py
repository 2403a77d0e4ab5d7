"""nbgrader's settings for learners working in this repository: Validate in ``make lab``, ``nbgrader validate``.

Both read this file from the folder they start in (the repository root). nbgrader gives each cell 30 s
and waits 4 s for its output by default; the tutorials' training cells take minutes on a laptop, and a
busy machine answers slowly, so Validate would report a timeout instead of the learner's result.
Instructors grading a course use the course folder's own ``nbgrader_config.py`` (tutorials/README.md).
"""

c = get_config()  # noqa: F821 - nbgrader's configuration loader provides get_config

c.Execute.timeout = 600  # seconds per cell
c.Execute.iopub_timeout = 60  # seconds to wait for a finished cell's output
