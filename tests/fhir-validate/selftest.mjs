// Self-test of validate.mjs: it must reject what is wrong and accept what is right.
// Run: node --test selftest.mjs   (or: node selftest.mjs, or: npm test)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NHI_SYSTEM, nhiProblem, validateDocuments } from './validate.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'fhir-validate-selftest-'));
after(() => rmSync(work, { recursive: true, force: true }));

function check(name, doc) {
  const report = validateDocuments([{ name, doc }]);
  console.log(`report ${name}: ${JSON.stringify(report)}`);
  return report;
}

function expectError(report, { resource, path, message }) {
  const hit = report.errors.find(
    (e) =>
      (resource === undefined || e.resource === resource) &&
      (path === undefined || e.path === path) &&
      (message === undefined || (message instanceof RegExp ? message.test(e.message) : e.message === message))
  );
  assert.ok(hit, `expected an error ${JSON.stringify({ resource, path, message: String(message) })} in ${JSON.stringify(report.errors)}`);
}

const nhi = (value, use = 'official') => ({ use, system: NHI_SYSTEM, value });

// ------------------------------------------------------------- fixtures

const validPatient = {
  resourceType: 'Patient',
  id: 'p1',
  meta: { lastUpdated: '2024-05-01T10:00:00+12:00' },
  identifier: [nhi('ZZZ0016')],
  active: true,
  name: [{ use: 'official', family: 'Ngata', given: ['Aroha'] }],
  telecom: [{ system: 'email', value: 'aroha@example.org', use: 'home' }],
  gender: 'female',
  birthDate: '1984-03-12',
  address: [{ use: 'home', line: ['1 Example Street'], city: 'Wellington', postalCode: '6011', country: 'NZ' }],
};

const validObservation = {
  resourceType: 'Observation',
  id: 'o1',
  status: 'final',
  category: [
    {
      coding: [
        { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' },
      ],
    },
  ],
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' }] },
  subject: { reference: 'Patient/p1' },
  effectiveDateTime: '2024-05-01T09:30:00+12:00',
  issued: '2024-05-01T11:00:00+12:00',
  valueQuantity: { value: 5.4, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  interpretation: [
    {
      coding: [
        { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'N', display: 'Normal' },
      ],
    },
  ],
  referenceRange: [
    {
      low: { value: 3.5, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
      high: { value: 7.8, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
      text: '3.5-7.8 mmol/L',
    },
  ],
};

const auditEvent = {
  resourceType: 'AuditEvent',
  id: 'a1',
  type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110110', display: 'Patient Record' },
  action: 'R',
  recorded: '2024-05-01T11:05:00+12:00',
  outcome: '0',
  agent: [{ who: { reference: 'Patient/p1', display: 'Aroha Ngata' }, requestor: true }],
  source: { site: 'Tiaki', observer: { display: 'Tiaki patient portal' } },
  entity: [{ what: { reference: 'DocumentReference/d1' } }],
};

const documentReference = {
  resourceType: 'DocumentReference',
  id: 'd1',
  status: 'current',
  docStatus: 'final',
  type: { coding: [{ system: 'http://loinc.org', code: '11506-3', display: 'Progress note' }] },
  subject: { reference: 'Patient/p1' },
  date: '2024-05-01T10:30:00+12:00',
  content: [{ attachment: { contentType: 'application/pdf', url: 'https://tiaki.example/doc/d1', title: 'Visit summary' } }],
};

const condition = {
  resourceType: 'Condition',
  id: 'c1',
  clinicalStatus: {
    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }],
  },
  verificationStatus: {
    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }],
  },
  code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' }] },
  subject: { reference: 'Patient/p1', identifier: nhi('ZZZ0016', 'official') },
  onsetDateTime: '2019-07-01',
};

const collectionBundle = {
  resourceType: 'Bundle',
  id: 'b1',
  type: 'collection',
  timestamp: '2024-05-01T11:10:00+12:00',
  entry: [
    { fullUrl: 'https://tiaki.example/fhir/Patient/p1', resource: validPatient },
    { fullUrl: 'https://tiaki.example/fhir/AuditEvent/a1', resource: auditEvent },
    { fullUrl: 'https://tiaki.example/fhir/DocumentReference/d1', resource: documentReference },
    { fullUrl: 'https://tiaki.example/fhir/Condition/c1', resource: condition },
  ],
};

const operationOutcome = {
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code: 'not-found', diagnostics: 'Patient/p9 is not known' }],
};

const clone = (x) => structuredClone(x);

// ---------------------------------------------------------------- tests

describe('NHI check digit rules', () => {
  for (const value of ['ZZZ0016', 'ZZZ0024', 'ZAA0067', 'ZAC5361', 'ZZZ00AC', 'ZBN77VL', 'ZSC21TN']) {
    test(`${value} is valid`, () => assert.equal(nhiProblem(value), null));
  }
  for (const value of ['ZZZ0044', 'ZZZ00AA', 'ZZZ0017', 'zzz0016', 'ZZI0016', 'ZZO0016', 'ZZZ001', 'ZZZ00166', '', undefined, 16]) {
    test(`${JSON.stringify(value)} is invalid`, () => assert.notEqual(nhiProblem(value), null));
  }
});

describe('rejects', () => {
  test('an Observation missing status and code', () => {
    const r = check('obs-missing', { resourceType: 'Observation', id: 'bad1', subject: { reference: 'Patient/p1' } });
    expectError(r, { resource: 'Observation/bad1', path: 'Observation.status', message: 'Missing required property' });
    expectError(r, { resource: 'Observation/bad1', path: 'Observation.code', message: 'Missing required property' });
    assert.equal(r.errors.length, 2);
  });

  test('a resource with an unknown property', () => {
    const p = clone(validPatient);
    p.favouriteColour = 'blue';
    const r = check('unknown-prop', p);
    expectError(r, { resource: 'Patient/p1', path: 'Patient.favouriteColour', message: /Invalid additional property "favouriteColour"/ });
    assert.equal(r.errors.length, 1);
  });

  test('a wrong JSON type (valueQuantity.value "abc")', () => {
    const o = clone(validObservation);
    o.valueQuantity.value = 'abc';
    const r = check('wrong-type', o);
    expectError(r, { resource: 'Observation/o1', path: 'Observation.valueQuantity.value', message: /expected number/ });
    assert.equal(r.errors.length, 1);
  });

  test('an invalid NHI', () => {
    const p = clone(validPatient);
    p.identifier = [nhi('ZZZ0017')];
    const r = check('bad-nhi', p);
    expectError(r, { resource: 'Patient/p1', path: 'Patient.identifier[0].value', message: /ZZZ0017.*check digit/ });
    assert.equal(r.errors.length, 1);
  });

  test('an invalid NHI in a reference identifier of a Bundle entry', () => {
    const b = clone(collectionBundle);
    b.entry[3].resource.subject.identifier.value = 'ZZZ00AA';
    const r = check('bad-nhi-ref', b);
    expectError(r, { resource: 'Condition/c1', path: 'Condition.subject.identifier.value', message: /ZZZ00AA/ });
    assert.equal(r.errors.length, 1);
  });

  test('two official NHIs on one Patient (nz-pat-1)', () => {
    const p = clone(validPatient);
    p.identifier = [nhi('ZZZ0016'), nhi('ZZZ0024')];
    const r = check('two-official', p);
    expectError(r, { resource: 'Patient/p1', path: 'Patient.identifier', message: /nz-pat-1/ });
    assert.equal(r.errors.length, 1);
    // An official NHI plus an old one is fine.
    p.identifier = [nhi('ZZZ0016'), nhi('ZZZ0024', 'old')];
    assert.deepEqual(check('official-and-old', p).errors, []);
  });

  test('a code outside its required value set', () => {
    const o = clone(validObservation);
    o.status = 'done';
    const r = check('bad-status', o);
    expectError(r, { resource: 'Observation/o1', path: 'Observation.status', message: /not in the required value set/ });
    assert.equal(r.errors.length, 1);
  });

  test('an error inside a Bundle entry is pinned on that entry', () => {
    const b = clone(collectionBundle);
    delete b.entry[2].resource.status;
    b.entry[1].resource.agent[0].requestor = 'yes';
    const r = check('bundle-entry-errors', b);
    expectError(r, { resource: 'DocumentReference/d1', path: 'DocumentReference.status', message: 'Missing required property' });
    expectError(r, { resource: 'AuditEvent/a1', path: 'AuditEvent.agent[0].requestor', message: /boolean/ });
    assert.equal(r.checked, 5);
  });

  test('a resource type that is not R4', () => {
    const r = check('not-r4', [{ resourceType: 'SubscriptionStatus', status: 'active', type: 'heartbeat' }, { resourceType: 'Nope' }]);
    expectError(r, { path: 'SubscriptionStatus', message: /Unknown FHIR R4/ });
    expectError(r, { path: 'Nope', message: /Unknown FHIR R4/ });
  });

  test('a malformed resource id', () => {
    const p = clone(validPatient);
    p.id = 'not an id!';
    const r = check('bad-id', p);
    expectError(r, { path: 'Patient.id', message: /Invalid resource id/ });
    assert.equal(r.errors.length, 1);
  });

  test('a bad invariant (Observation.referenceRange with neither low, high nor text: obs-3)', () => {
    const o = clone(validObservation);
    o.referenceRange = [{ appliesTo: [{ text: 'adults' }] }];
    const r = check('obs-3', o);
    expectError(r, { resource: 'Observation/o1', message: /obs-3/ });
  });
});

describe('accepts', () => {
  test('a valid Patient with NHI ZZZ0016', () => {
    const r = check('patient', validPatient);
    assert.deepEqual(r, { checked: 1, errors: [], warnings: [] });
  });

  test('a valid Observation with valueQuantity, referenceRange and interpretation', () => {
    const r = check('observation', validObservation);
    assert.deepEqual(r, { checked: 1, errors: [], warnings: [] });
  });

  test('a collection Bundle with AuditEvent, DocumentReference and Condition', () => {
    const r = check('bundle', collectionBundle);
    assert.deepEqual(r.errors, []);
    assert.equal(r.checked, 5);
  });

  test('an OperationOutcome', () => {
    const r = check('operation-outcome', operationOutcome);
    assert.deepEqual(r, { checked: 1, errors: [], warnings: [] });
  });
});

describe('command line', () => {
  const run = (args, input) => {
    const res = spawnSync(process.execPath, [join(here, 'validate.mjs'), ...args], { input, encoding: 'utf8' });
    console.log(`run validate.mjs ${args.join(' ')} -> exit ${res.status}: ${res.stdout.replace(/\s+/g, ' ').slice(0, 300)}${res.stderr.trim()}`);
    return res;
  };

  test('exit 0 for valid files, with a JSON report', () => {
    const a = join(work, 'ok.json');
    const b = join(work, 'ok-array.json');
    writeFileSync(a, JSON.stringify(collectionBundle));
    writeFileSync(b, JSON.stringify([validPatient, validObservation, operationOutcome]));
    const res = run([a, b]);
    assert.equal(res.status, 0);
    assert.deepEqual(JSON.parse(res.stdout), { checked: 8, errors: [], warnings: [] });
  });

  test('exit 1 with errors, reading stdin', () => {
    const res = run([], JSON.stringify({ resourceType: 'Observation' }));
    assert.equal(res.status, 1);
    const report = JSON.parse(res.stdout);
    assert.equal(report.checked, 1);
    assert.equal(report.errors.length, 2);
  });

  test('exit 2 on bad JSON, a missing file, or a bad option', () => {
    assert.equal(run([], '{"resourceType": ').status, 2);
    assert.equal(run([join(work, 'missing.json')]).status, 2);
    assert.equal(run(['--bogus']).status, 2);
  });
});
