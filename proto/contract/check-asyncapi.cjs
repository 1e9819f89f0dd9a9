// Parses an AsyncAPI document with the official parser (@asyncapi/parser)
// and fails on any error or warning it reports; prints the rest.
// Usage: node check-asyncapi.cjs FILE
const { Parser, fromFile } = require('@asyncapi/parser');

const SEVERITY = ['error', 'warning', 'info', 'hint'];

(async () => {
  const file = process.argv[2];
  const { document, diagnostics } = await fromFile(new Parser(), file).parse();
  let failed = !document;
  for (const d of diagnostics) {
    const severity = SEVERITY[d.severity] || String(d.severity);
    console.log(`${severity}: ${d.code} at ${d.path.join('.') || '(root)'}: ${d.message}`);
    if (d.severity <= 1) failed = true;
  }
  if (failed) {
    console.log(`${file}: the AsyncAPI parser reports errors or warnings`);
    process.exit(1);
  }
  const channels = document.channels().length;
  const messages = document.components().messages().length;
  console.log(`${file}: parsed, ${channels} channels, ${messages} messages, no error or warning`);
})().catch((error) => {
  console.log(`${process.argv[2]}: ${error}`);
  process.exit(1);
});
