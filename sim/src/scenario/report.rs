//! What a run tells people and CI servers: live progress lines, JUnit XML
//! (one testsuite per file, one testcase per scenario) and a JSON report.

use super::runner::{ScenarioResult, StepResult};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// A progress line for one step.
pub fn step_line(r: &StepResult) -> String {
    let mark = if r.passed { "ok  " } else { "FAIL" };
    let mut line = format!(
        "  {mark} {:<6} {:<18} {} ({} ms)",
        r.path, r.kind, r.label, r.duration_ms
    );
    if let Some(f) = &r.failure {
        for l in f.lines() {
            line.push_str("\n         ");
            line.push_str(l);
        }
    }
    line
}

/// The summary line of a scenario.
pub fn scenario_line(r: &ScenarioResult) -> String {
    let verdict = if r.passed { "passed" } else { "FAILED" };
    format!("scenario {:?} {verdict} in {} ms ({})", r.name, r.duration_ms, r.file)
}

/// JUnit XML for all results, grouped by file.
pub fn junit(results: &[ScenarioResult], output: &str) -> String {
    let mut report = Report::new("avs-sim");
    let mut files: Vec<&str> = results.iter().map(|r| r.file.as_str()).collect();
    files.dedup();
    for file in files {
        let mut suite = TestSuite::new(file);
        for r in results.iter().filter(|r| r.file == file) {
            let status = if r.passed {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let failed = r.steps.iter().find(|s| !s.passed);
                if let TestCaseStatus::NonSuccess {
                    message,
                    description,
                    ty,
                    ..
                } = &mut s
                {
                    *message = failed.map(|f| format!("step {} {} failed: {}", f.path, f.kind, f.label).into());
                    *description = r.failure.clone().map(Into::into);
                    *ty = Some("scenario-failure".into());
                }
                s
            };
            let mut case = TestCase::new(r.name.as_str(), status);
            case.set_classname(file);
            case.set_time(Duration::from_millis(r.duration_ms));
            let steps: Vec<String> = r.steps.iter().map(step_line).collect();
            let mut out = steps.join("\n");
            if !output.is_empty() {
                out.push_str("\n--- device under test ---\n");
                out.push_str(output);
            }
            case.set_system_out(out);
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, passed: bool) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            file: "scenarios/x.toml".into(),
            passed,
            duration_ms: 12,
            steps: vec![StepResult {
                path: "1".into(),
                kind: "expect",
                label: "System.SoftwareInfo from dut".into(),
                passed,
                started_ms: 0,
                duration_ms: 12,
                journal_ids: vec![4],
                failure: (!passed).then(|| "no match within 5s: expected System.SoftwareInfo".into()),
            }],
            failure: (!passed).then(|| "no match within 5s: expected System.SoftwareInfo".into()),
        }
    }

    #[test]
    fn junit_has_a_suite_per_file_and_a_case_per_scenario() {
        let xml = junit(&[result("a", true), result("b", false)], "");
        assert!(
            xml.contains("<testsuite name=\"scenarios/x.toml\" tests=\"2\""),
            "{xml}"
        );
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("<testcase name=\"b\""), "{xml}");
        assert!(xml.contains("step 1 expect failed"), "{xml}");
        assert!(xml.contains("no match within 5s"), "{xml}");
    }
}
