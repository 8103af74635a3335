"""``grader review``: the TA's page for written answers, served locally from the gradebook.

Why a page and not only the CSV/YAML sheet: a TA reads one question at a time, every student's
answer under the reference answer and the rubric's bullets, scores with the keyboard, and reads
the same reasoning once instead of thirty times (answers are grouped by meaning). Both routes read
and write the same gradebook rows (``grader.course.gradebook``), and after every change the same code as
``grader manual import`` brings result.json, the reports, grades.csv and the overview up to date.

Modules, in the order a request meets them:

- ``data``: the gradebook -> typed items and answers (``ReviewData``); what counts as no answer.
- ``clustering``: answers -> groups by meaning (all-MiniLM-L6-v2 + agglomerative clustering).
- ``suggest``: suggested points for a group or an answer (shown, never applied).
- ``markdown``: student Markdown + LaTeX -> sanitised HTML (math is typeset in the browser).
- ``scoring``: a TA's edits -> the gradebook, refused when stale, outputs refreshed.
- ``app``: the Starlette app (token gate, CSP, pages, JSON API).
"""
