//! What the simulator knows about Alexa interfaces: their names, the
//! versions a capability may declare and the properties each one reports
//! (reference smarthome.md §4 rules 13, 14, 16).
//!
//! UPDATABLE: written from the interfaces' documentation pages
//! (developer.amazon.com/docs/alexa/device-apis/alexa-*.html) and the seed,
//! never from the official schema (licence, reference §7). Amazon adds
//! interfaces and versions; an interface missing here only warns (rule 13),
//! so add a row when a real skill needs one.

/// One interface: its name, the versions the documentation shows, and the
/// property names it reports (`None`: not listed here, so not checked).
pub(super) struct Interface {
    pub name: &'static str,
    pub versions: &'static [&'static str],
    pub properties: Option<&'static [&'static str]>,
}

const V3: &[&str] = &["3"];
/// The video skill interfaces appear with "1.0" in the seed's video example.
const VIDEO: &[&str] = &["3", "1.0"];
const NONE: Option<&[&str]> = Some(&[]);

const fn i(
    name: &'static str,
    versions: &'static [&'static str],
    properties: Option<&'static [&'static str]>,
) -> Interface {
    Interface {
        name,
        versions,
        properties,
    }
}

/// The known interfaces (updatable list).
pub(super) const INTERFACES: &[Interface] = &[
    i("Alexa", V3, NONE),
    i("Alexa.PowerController", V3, Some(&["powerState"])),
    i("Alexa.BrightnessController", V3, Some(&["brightness"])),
    i("Alexa.ColorController", V3, Some(&["color"])),
    i(
        "Alexa.ColorTemperatureController",
        V3,
        Some(&["colorTemperatureInKelvin"]),
    ),
    // ThermostatController "3.1" and "3.2" add adaptive recovery and more.
    i(
        "Alexa.ThermostatController",
        &["3", "3.1", "3.2"],
        Some(&[
            "targetSetpoint",
            "lowerSetpoint",
            "upperSetpoint",
            "thermostatMode",
            "adaptiveRecoveryStatus",
        ]),
    ),
    i("Alexa.ThermostatController.HVAC.Components", V3, None),
    i("Alexa.TemperatureSensor", V3, Some(&["temperature"])),
    i("Alexa.LockController", V3, Some(&["lockState"])),
    i("Alexa.SceneController", V3, NONE),
    // EndpointHealth "3.1" is documented; Amazon's ASP sample emits "3.2".
    i(
        "Alexa.EndpointHealth",
        &["3", "3.1", "3.2"],
        Some(&[
            "connectivity",
            "battery",
            "radioDiagnostics",
            "networkThroughput",
            "signalStrength",
        ]),
    ),
    i("Alexa.PercentageController", V3, Some(&["percentage"])),
    i("Alexa.PowerLevelController", V3, Some(&["powerLevel"])),
    i("Alexa.ModeController", V3, Some(&["mode"])),
    i("Alexa.RangeController", V3, Some(&["rangeValue"])),
    i("Alexa.ToggleController", V3, Some(&["toggleState"])),
    i("Alexa.ChannelController", VIDEO, Some(&["channel"])),
    i("Alexa.InputController", V3, Some(&["input"])),
    i("Alexa.PlaybackController", VIDEO, NONE),
    i("Alexa.PlaybackStateReporter", V3, Some(&["playbackState"])),
    i("Alexa.Speaker", V3, Some(&["volume", "muted"])),
    i("Alexa.StepSpeaker", V3, NONE),
    i("Alexa.EqualizerController", V3, Some(&["bands", "mode"])),
    i("Alexa.CameraStreamController", V3, NONE),
    i("Alexa.ContactSensor", V3, Some(&["detectionState"])),
    i("Alexa.MotionSensor", V3, Some(&["detectionState"])),
    i("Alexa.DoorbellEventSource", V3, NONE),
    i(
        "Alexa.SecurityPanelController",
        V3,
        Some(&[
            "armState",
            "burglaryAlarm",
            "waterAlarm",
            "fireAlarm",
            "carbonMonoxideAlarm",
        ]),
    ),
    i("Alexa.RTCSessionController", V3, None),
    i("Alexa.SeekController", VIDEO, NONE),
    i("Alexa.RecordController", VIDEO, None),
    i("Alexa.Launcher", VIDEO, None),
    i("Alexa.RemoteVideoPlayer", VIDEO, None),
    i("Alexa.VideoRecorder", VIDEO, None),
    i("Alexa.ChannelController.Lineup", VIDEO, None),
    i("Alexa.UIController", VIDEO, None),
    i("Alexa.KeypadController", V3, NONE),
    i("Alexa.TimeHoldController", V3, None),
    i("Alexa.InventoryLevelSensor", V3, Some(&["level"])),
    i("Alexa.InventoryUsageSensor", V3, Some(&["usage"])),
    i("Alexa.InventoryLevelUsageSensor", V3, None),
    i("Alexa.AutomationManagement", &["1.0"], None),
    i("Alexa.Cooking", V3, None),
    i("Alexa.Cooking.TimeController", V3, None),
    i("Alexa.Cooking.TemperatureController", V3, None),
    i("Alexa.Cooking.PresetController", V3, None),
    i("Alexa.Cooking.FoodTemperatureController", V3, None),
    i("Alexa.Cooking.FoodTemperatureSensor", V3, None),
    i("Alexa.Cooking.TemperatureSensor", V3, None),
    i("Alexa.WakeOnLANController", V3, NONE),
    i("Alexa.DeviceUsage.Meter", V3, None),
    i("Alexa.DeviceUsage.Estimation", V3, None),
    i("Alexa.DataController", V3, None),
    i("Alexa.ApplicationStateReporter", V3, None),
    i("Alexa.MediaMetadata", V3, None),
    i("Alexa.Camera.LiveViewController", V3, None),
    i("Alexa.SmartVision.ObjectDetectionSensor", V3, None),
    i("Alexa.SmartVision.SnapshotProvider", V3, None),
    i("Alexa.ProactiveNotificationSource", V3, None),
];

/// The interface named `name`, when known.
pub(super) fn find(name: &str) -> Option<&'static Interface> {
    INTERFACES.iter().find(|i| i.name == name)
}

/// The versions the schema allowed (`strict`, rule 14): "3" everywhere but
/// AutomationManagement, "1.0".
pub(super) fn schema_versions(name: &str) -> &'static [&'static str] {
    match name {
        "Alexa.AutomationManagement" => &["1.0"],
        _ => V3,
    }
}

/// General `ErrorResponse` types (namespace `Alexa`; reference §2).
pub(super) const ERROR_TYPES: &[&str] = &[
    "ALREADY_IN_OPERATION",
    "BRIDGE_UNREACHABLE",
    "CLOUD_CONTROL_DISABLED",
    "ENDPOINT_BUSY",
    "ENDPOINT_LOW_POWER",
    "ENDPOINT_UNREACHABLE",
    "EXPIRED_AUTHORIZATION_CREDENTIAL",
    "FIRMWARE_OUT_OF_DATE",
    "HARDWARE_MALFUNCTION",
    "INSUFFICIENT_PERMISSIONS",
    "INTERNAL_ERROR",
    "INVALID_AUTHORIZATION_CREDENTIAL",
    "INVALID_DIRECTIVE",
    "INVALID_VALUE",
    "NO_SUCH_ENDPOINT",
    "NOT_CALIBRATED",
    "NOT_SUPPORTED_IN_CURRENT_MODE",
    "NOT_IN_OPERATION",
    "POWER_LEVEL_NOT_SUPPORTED",
    "RATE_LIMIT_EXCEEDED",
    "VALUE_OUT_OF_RANGE",
    "TEMPERATURE_VALUE_OUT_OF_RANGE",
    "TOO_MANY_FAILED_ATTEMPTS",
];

/// Interface-specific `ErrorResponse` namespaces and their extra types, from
/// the interfaces' pages (updatable). `None`: not an ErrorResponse namespace
/// known here.
pub(super) fn error_types(namespace: &str) -> Option<&'static [&'static str]> {
    Some(match namespace {
        "Alexa" => &[],
        "Alexa.Authorization" => &["ACCEPT_GRANT_FAILED"],
        "Alexa.ThermostatController" => &[
            "REQUESTED_SETPOINTS_TOO_CLOSE",
            "THERMOSTAT_IS_OFF",
            "UNSUPPORTED_THERMOSTAT_MODE",
            "DUAL_SETPOINTS_UNSUPPORTED",
            "TRIPLE_SETPOINTS_UNSUPPORTED",
            "UNWILLING_TO_SET_SCHEDULE",
            "UNWILLING_TO_SET_VALUE",
        ],
        "Alexa.SecurityPanelController" => &[
            "AUTHORIZATION_REQUIRED",
            "BAD_PIN",
            "NOT_READY",
            "UNCLEARED_ALARM",
            "UNCLEARED_TROUBLE",
        ],
        "Alexa.Cooking" => &[
            "DOOR_OPEN",
            "DOOR_CLOSED_TOO_LONG",
            "COOK_DURATION_TOO_LONG",
            "REMOTE_START_NOT_SUPPORTED",
            "REMOTE_START_DISABLED",
        ],
        "Alexa.Video" => &["NOT_SUBSCRIBED", "CONTENT_NOT_RECORDABLE", "RECORDING_EXISTS"],
        _ => return None,
    })
}

/// `change.cause.type` values (rule 25).
pub(super) const CAUSES: &[&str] = &[
    "APP_INTERACTION",
    "PHYSICAL_INTERACTION",
    "PERIODIC_POLL",
    "RULE_TRIGGER",
    "VOICE_INTERACTION",
    "INVALID_CREDENTIALS",
    "SUBSCRIPTION_EXPIRED",
];
