-- Which layers above jobs have their tables in this schema: the workflows plugin's, the schedules'
-- and the background processes' (a tab shows only for a layer that is installed).
SELECT to_regclass('{{schema}}.wf_workflows') IS NOT NULL AS workflows,
       to_regclass('{{schema}}.schedules') IS NOT NULL AS schedules,
       to_regclass('{{schema}}.processes') IS NOT NULL AS processes
