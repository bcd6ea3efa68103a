//! Detection and containment: only operators see alerts, act on them, and switch modules off.

use super::operator;
use crate::{Platform, action, decided_by};

action!(
    /// See the detectors' alerts, their evidence and timelines (the security console).
    ViewAlerts, Platform, "platform.alerts.view", Detection, Alert, Read
);
action!(
    /// Acknowledge an alert, or lift what a detector did (unlock, resume).
    ManageAlerts, Platform, "platform.alerts.manage", Detection, Alert, Update
);
action!(
    /// Switch a module off or on, for one practice or everyone (the kill switch).
    SwitchModules, Platform, "platform.modules.switch", Detection, ModuleSwitch, Update
);

decided_by!(
    ViewAlerts => operator,
    ManageAlerts => operator,
    SwitchModules => operator,
);
