DELETE FROM {{schema}}.wf_signals WHERE id = $1
