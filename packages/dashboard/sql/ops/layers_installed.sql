-- Which layers above jobs have their tables in this schema: the workflows plugin's and the schedules'
-- (a tab shows only for a layer that is installed).
SELECT to_regclass('{{schema}}.wf_workflows') IS NOT NULL AS workflows,
       to_regclass('{{schema}}.schedules') IS NOT NULL AS schedules
