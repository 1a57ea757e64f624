import $RefParser from '@apidevtools/json-schema-ref-parser';
import yaml from 'js-yaml';
const seen = new Map();
const parser = { order: 1, canParse: ['.yaml','.yml','.json'], async parse(file) { const v = yaml.load(String(file.data), { schema: yaml.JSON_SCHEMA }); seen.set(file.url, v); if (file.url.includes('bad')) throw new Error('mine'); return v; } };
const r = await $RefParser.dereference(process.argv[2], { parse: { yaml: parser, json: false, text: false, binary: false } });
console.log(JSON.stringify(r).slice(0, 300));
for (const [u, v] of seen) console.log(u, v === r, v === r.app?.graphs?.[0], v?.signup === r.app?.graphs?.[0]?.input?.schema);
