//! The FHIR R4 (4.0.1) resources the records module reads and writes, as typed structs: only
//! the elements Tiaki uses (anything else a practice's system sends is not kept). Choice
//! elements (`value[x]`, `effective[x]`…) are one field per type used. Every struct serialises
//! back to valid FHIR JSON: empty elements are left out, as FHIR requires.

use serde::{Deserialize, Serialize};

/// The NHI's naming system (HL7 NZ Base IG).
pub const NHI_SYSTEM: &str = "https://standards.digital.health.nz/ns/nhi-id";
/// Tiaki's extension carrying a consultation's note on an `Encounter` (R4 has no element for it).
pub const CONSULTATION_NOTE: &str = "https://tiaki.nz/fhir/StructureDefinition/consultation-note";

/// What FHIR leaves out of JSON: absent and empty values.
pub trait Empty {
    /// Whether the value is absent or empty.
    fn is_empty(&self) -> bool;
}
impl<T> Empty for Option<T> {
    fn is_empty(&self) -> bool {
        self.is_none()
    }
}
impl<T> Empty for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

macro_rules! fhir {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", default)]
        pub struct $name {
            $($(#[$fm])*
            #[doc = concat!("The FHIR element `", stringify!($field), "` (camelCase in JSON).")]
            #[serde(skip_serializing_if = "Empty::is_empty")]
            pub $field: $ty,)*
        }
    };
}

fhir!(
    /// `Meta`.
    Meta { version_id: Option<String>, last_updated: Option<String>, tag: Vec<Coding>, }
);
fhir!(
    /// `Coding`.
    Coding { system: Option<String>, code: Option<String>, display: Option<String>, }
);
fhir!(
    /// `CodeableConcept`.
    CodeableConcept { coding: Vec<Coding>, text: Option<String>, }
);
fhir!(
    /// `Identifier`.
    Identifier { r#use: Option<String>, system: Option<String>, value: Option<String>, }
);
fhir!(
    /// `Reference` (literal, or logical by identifier).
    Reference { reference: Option<String>, identifier: Option<Identifier>, display: Option<String>, }
);
fhir!(
    /// `Quantity`.
    Quantity { value: Option<f64>, comparator: Option<String>, unit: Option<String>, system: Option<String>, code: Option<String>, }
);
fhir!(
    /// `Period`.
    Period { start: Option<String>, end: Option<String>, }
);
fhir!(
    /// `Annotation`.
    Annotation { text: Option<String>, time: Option<String>, }
);
fhir!(
    /// `Extension` (string values only).
    Extension { url: Option<String>, value_string: Option<String>, }
);
fhir!(
    /// `HumanName`.
    HumanName { r#use: Option<String>, text: Option<String>, family: Option<String>, given: Vec<String>, }
);
fhir!(
    /// `Dosage` (its words).
    Dosage { text: Option<String>, patient_instruction: Option<String>, }
);
fhir!(
    /// `Observation.referenceRange`.
    ReferenceRange { low: Option<Quantity>, high: Option<Quantity>, text: Option<String>, }
);
fhir!(
    /// `AllergyIntolerance.reaction`.
    Reaction { manifestation: Vec<CodeableConcept>, description: Option<String>, severity: Option<String>, }
);
fhir!(
    /// `Immunization.protocolApplied`.
    ProtocolApplied { series: Option<String>, dose_number_positive_int: Option<u32>, }
);
fhir!(
    /// `MedicationRequest.dispenseRequest`.
    DispenseRequest { number_of_repeats_allowed: Option<u32>, }
);

fhir!(
    /// `Patient`: matched by NHI, never created by ingest.
    Patient { id: Option<String>, meta: Option<Meta>, identifier: Vec<Identifier>, name: Vec<HumanName>, birth_date: Option<String>, }
);
fhir!(
    /// `Condition`.
    Condition {
        id: Option<String>, meta: Option<Meta>, clinical_status: Option<CodeableConcept>,
        verification_status: Option<CodeableConcept>, category: Vec<CodeableConcept>, code: Option<CodeableConcept>,
        subject: Option<Reference>, onset_date_time: Option<String>, abatement_date_time: Option<String>,
        recorded_date: Option<String>, note: Vec<Annotation>,
    }
);
fhir!(
    /// `AllergyIntolerance`.
    AllergyIntolerance {
        id: Option<String>, meta: Option<Meta>, clinical_status: Option<CodeableConcept>,
        verification_status: Option<CodeableConcept>, r#type: Option<String>, category: Vec<String>,
        criticality: Option<String>, code: Option<CodeableConcept>, patient: Option<Reference>,
        onset_date_time: Option<String>, recorded_date: Option<String>, reaction: Vec<Reaction>, note: Vec<Annotation>,
    }
);
fhir!(
    /// `MedicationStatement`.
    MedicationStatement {
        id: Option<String>, meta: Option<Meta>, status: Option<String>, medication_codeable_concept: Option<CodeableConcept>,
        subject: Option<Reference>, effective_date_time: Option<String>, effective_period: Option<Period>,
        date_asserted: Option<String>, dosage: Vec<Dosage>, note: Vec<Annotation>,
    }
);
fhir!(
    /// `MedicationRequest` (the long-term list; repeats allowed mark what may be asked for again).
    MedicationRequest {
        id: Option<String>, meta: Option<Meta>, status: Option<String>, intent: Option<String>,
        medication_codeable_concept: Option<CodeableConcept>, subject: Option<Reference>, authored_on: Option<String>,
        course_of_therapy_type: Option<CodeableConcept>, dosage_instruction: Vec<Dosage>,
        dispense_request: Option<DispenseRequest>, note: Vec<Annotation>,
    }
);
fhir!(
    /// `Immunization`.
    Immunization {
        id: Option<String>, meta: Option<Meta>, status: Option<String>, vaccine_code: Option<CodeableConcept>,
        patient: Option<Reference>, occurrence_date_time: Option<String>, lot_number: Option<String>,
        protocol_applied: Vec<ProtocolApplied>, note: Vec<Annotation>,
    }
);
fhir!(
    /// `Observation`: a lab result or a vital sign.
    Observation {
        id: Option<String>, meta: Option<Meta>, status: Option<String>, category: Vec<CodeableConcept>,
        code: Option<CodeableConcept>, subject: Option<Reference>, effective_date_time: Option<String>,
        issued: Option<String>, value_quantity: Option<Quantity>, value_string: Option<String>,
        value_codeable_concept: Option<CodeableConcept>, interpretation: Vec<CodeableConcept>, note: Vec<Annotation>,
        reference_range: Vec<ReferenceRange>,
    }
);
fhir!(
    /// `DiagnosticReport`: results grouped, with the lab's conclusion.
    DiagnosticReport {
        id: Option<String>, meta: Option<Meta>, status: Option<String>, category: Vec<CodeableConcept>,
        code: Option<CodeableConcept>, subject: Option<Reference>, effective_date_time: Option<String>,
        issued: Option<String>, result: Vec<Reference>, conclusion: Option<String>,
    }
);
fhir!(
    /// `Encounter`, with its consultation note in [`CONSULTATION_NOTE`].
    Encounter {
        id: Option<String>, meta: Option<Meta>, extension: Vec<Extension>, status: Option<String>, class: Option<Coding>,
        r#type: Vec<CodeableConcept>, subject: Option<Reference>, period: Option<Period>,
        reason_code: Vec<CodeableConcept>,
    }
);
fhir!(
    /// `ServiceRequest`: a recall (care the practice asks for, with a due date).
    ServiceRequest {
        id: Option<String>, meta: Option<Meta>, status: Option<String>, intent: Option<String>,
        code: Option<CodeableConcept>, subject: Option<Reference>, occurrence_date_time: Option<String>,
        authored_on: Option<String>, reason_code: Vec<CodeableConcept>, note: Vec<Annotation>,
    }
);

/// A resource Tiaki takes in or gives out, by its `resourceType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType")]
pub enum Resource {
    /// A patient (matched by NHI).
    Patient(Patient),
    /// A condition.
    Condition(Condition),
    /// An allergy.
    AllergyIntolerance(AllergyIntolerance),
    /// A medication taken.
    MedicationStatement(MedicationStatement),
    /// A medication prescribed.
    MedicationRequest(MedicationRequest),
    /// An immunisation.
    Immunization(Immunization),
    /// A result.
    Observation(Observation),
    /// A report of results.
    DiagnosticReport(DiagnosticReport),
    /// A consultation.
    Encounter(Encounter),
    /// A recall.
    ServiceRequest(ServiceRequest),
}

/// A Bundle as a practice's system sends it: its entries' resources are parsed one by one, so
/// a problem is reported at its place.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingBundle {
    /// Must be `Bundle`.
    pub resource_type: String,
    /// `transaction` or `batch`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The entries.
    #[serde(default)]
    pub entry: Vec<IncomingEntry>,
}

/// One entry of an incoming Bundle.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingEntry {
    /// Its full URL (`urn:uuid:…` or an absolute URL), by which other entries refer to it.
    pub full_url: Option<String>,
    /// The resource, parsed later.
    pub resource: Option<Box<serde_json::value::RawValue>>,
    /// What to do with it.
    pub request: Option<EntryRequest>,
}

/// `Bundle.entry.request`.
#[derive(Debug, Deserialize)]
pub struct EntryRequest {
    /// `PUT`, `POST` or `DELETE`.
    pub method: Option<String>,
    /// `Type/id` (or `Type` for a `POST`).
    pub url: Option<String>,
}

/// `OperationOutcome.issue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// `error` (or `warning`, `information`).
    pub severity: &'static str,
    /// The issue type (`structure`, `required`, `value`, `invalid`, `not-found`, `conflict`,
    /// `duplicate`, `too-costly`, `forbidden`).
    pub code: &'static str,
    /// What is wrong, for the people fixing it.
    pub diagnostics: String,
    /// Where, as `FHIRPath`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

impl Issue {
    /// An error at a place.
    #[must_use]
    pub fn error(code: &'static str, at: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        let at = at.into();
        Self {
            severity: "error",
            code,
            diagnostics: diagnostics.into(),
            expression: if at.is_empty() { Vec::new() } else { vec![at] },
        }
    }
}

/// `OperationOutcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    /// Always `OperationOutcome`.
    pub resource_type: &'static str,
    /// The issues, every one found.
    pub issue: Vec<Issue>,
}

impl OperationOutcome {
    /// An outcome listing these issues.
    #[must_use]
    pub const fn new(issue: Vec<Issue>) -> Self {
        Self { resource_type: "OperationOutcome", issue }
    }
}

impl CodeableConcept {
    /// Words for people: the text, else the first display; `None` when there are only codes.
    #[must_use]
    pub fn words(&self) -> Option<&str> {
        self.text
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| self.coding.iter().find_map(|c| c.display.as_deref().filter(|d| !d.trim().is_empty())))
    }

    /// Whether any coding has this code.
    #[must_use]
    pub fn has_code(&self, code: &str) -> bool {
        self.coding.iter().any(|c| c.code.as_deref() == Some(code))
    }

    /// A key for "the same test": the first coding's system and code, else the words.
    #[must_use]
    pub fn key(&self) -> String {
        self.coding
            .iter()
            .find_map(|c| c.code.as_ref().map(|code| format!("{}|{code}", c.system.as_deref().unwrap_or(""))))
            .unwrap_or_else(|| self.words().unwrap_or("").to_lowercase())
    }
}

impl Resource {
    /// Reads a resource whose type is known (a stored item's): straight into its struct, without
    /// the buffering a tagged read needs.
    ///
    /// # Errors
    /// When the JSON is not such a resource.
    pub fn parse_as(kind: &str, json: &str) -> serde_json::Result<Self> {
        Ok(match kind {
            "Condition" => Self::Condition(serde_json::from_str(json)?),
            "AllergyIntolerance" => Self::AllergyIntolerance(serde_json::from_str(json)?),
            "MedicationStatement" => Self::MedicationStatement(serde_json::from_str(json)?),
            "MedicationRequest" => Self::MedicationRequest(serde_json::from_str(json)?),
            "Immunization" => Self::Immunization(serde_json::from_str(json)?),
            "Observation" => Self::Observation(serde_json::from_str(json)?),
            "DiagnosticReport" => Self::DiagnosticReport(serde_json::from_str(json)?),
            "Encounter" => Self::Encounter(serde_json::from_str(json)?),
            "ServiceRequest" => Self::ServiceRequest(serde_json::from_str(json)?),
            _ => serde_json::from_str(json)?,
        })
    }

    /// Its `resourceType`.
    #[must_use]
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Patient(_) => "Patient",
            Self::Condition(_) => "Condition",
            Self::AllergyIntolerance(_) => "AllergyIntolerance",
            Self::MedicationStatement(_) => "MedicationStatement",
            Self::MedicationRequest(_) => "MedicationRequest",
            Self::Immunization(_) => "Immunization",
            Self::Observation(_) => "Observation",
            Self::DiagnosticReport(_) => "DiagnosticReport",
            Self::Encounter(_) => "Encounter",
            Self::ServiceRequest(_) => "ServiceRequest",
        }
    }

    /// Its id and meta, to read or set.
    pub fn id_meta(&mut self) -> (&mut Option<String>, &mut Option<Meta>) {
        match self {
            Self::Patient(r) => (&mut r.id, &mut r.meta),
            Self::Condition(r) => (&mut r.id, &mut r.meta),
            Self::AllergyIntolerance(r) => (&mut r.id, &mut r.meta),
            Self::MedicationStatement(r) => (&mut r.id, &mut r.meta),
            Self::MedicationRequest(r) => (&mut r.id, &mut r.meta),
            Self::Immunization(r) => (&mut r.id, &mut r.meta),
            Self::Observation(r) => (&mut r.id, &mut r.meta),
            Self::DiagnosticReport(r) => (&mut r.id, &mut r.meta),
            Self::Encounter(r) => (&mut r.id, &mut r.meta),
            Self::ServiceRequest(r) => (&mut r.id, &mut r.meta),
        }
    }

    /// The element naming the patient (`subject`, or `patient`), and its name for `FHIRPath`.
    pub fn subject_mut(&mut self) -> Option<(&'static str, &mut Option<Reference>)> {
        Some(match self {
            Self::Patient(_) => return None,
            Self::Condition(r) => ("subject", &mut r.subject),
            Self::AllergyIntolerance(r) => ("patient", &mut r.patient),
            Self::MedicationStatement(r) => ("subject", &mut r.subject),
            Self::MedicationRequest(r) => ("subject", &mut r.subject),
            Self::Immunization(r) => ("patient", &mut r.patient),
            Self::Observation(r) => ("subject", &mut r.subject),
            Self::DiagnosticReport(r) => ("subject", &mut r.subject),
            Self::Encounter(r) => ("subject", &mut r.subject),
            Self::ServiceRequest(r) => ("subject", &mut r.subject),
        })
    }
}
