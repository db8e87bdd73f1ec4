//! A hostile runtime for the `probes` suite: a real [`AbstractRuntime`] guest, built the way
//! a third-party runtime is (`confine_guest::serve`, so it gets the stage-2 lockdown like
//! any other), whose "scripts" are lists of native probes.
//!
//! A container's source names the probes it may run (whitespace-separated, from
//! `probes/catalog.rs`); calling export `NAME` with one string argument runs probe `NAME`
//! natively, after lockdown, and answers its [`Outcome`](catalog::Outcome) as a value. A probe
//! the policy kills never answers: the host sees the guest die by `SIGSYS`.

use confine_runtime_abstract::{
    protocol::{ContainerId, GlobalDef, Reply, Source},
    to_value, AbstractRuntime, ErrorData, ErrorKind, Link, ReplyTo, RuntimeInfo, Value,
};
use std::{collections::HashMap, time::Instant};

#[path = "../../probes/catalog.rs"]
mod catalog;

#[derive(Default)]
struct Probes {
    link: Option<Link>,
    containers: HashMap<ContainerId, Vec<String>>,
}

impl Probes {
    fn reply(&self, to: ReplyTo, result: Result<Reply, ErrorData>) {
        if let Some(link) = &self.link {
            link.reply(to, result);
        }
    }
}

impl AbstractRuntime for Probes {
    fn info(&self) -> RuntimeInfo {
        RuntimeInfo {
            name: "probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn init(&mut self, link: Link) -> Result<(), ErrorData> {
        self.link = Some(link);
        Ok(())
    }

    fn exec_container(
        &mut self,
        cid: ContainerId,
        source: &Source,
        _options: &Value,
        _globals: &[GlobalDef],
    ) -> Result<(), ErrorData> {
        let names: Vec<String> = source.code.split_whitespace().map(str::to_owned).collect();
        if let Some(unknown) = names
            .iter()
            .find(|n| !catalog::PROBES.contains(&n.as_str()))
        {
            return Err(ErrorData::new(
                ErrorKind::Syntax,
                "SyntaxError",
                format!("unknown probe {unknown:?}"),
            ));
        }
        self.containers.insert(cid, names);
        Ok(())
    }

    fn call(&mut self, cid: ContainerId, export: &str, args: Vec<Value>, reply: ReplyTo) {
        let listed = self
            .containers
            .get(&cid)
            .is_some_and(|names| names.iter().any(|n| n == export));
        if !listed {
            self.reply(
                reply,
                Err(ErrorData::new(
                    ErrorKind::NoSuchExport,
                    "Error",
                    format!("probe {export:?} is not in this container's source"),
                )),
            );
            return;
        }
        let arg = match args.first() {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let result = match catalog::run(export, &arg) {
            Some(outcome) => to_value(&outcome)
                .map(Reply::Value)
                .map_err(|e| ErrorData::internal(e.to_string())),
            None => Err(ErrorData::internal(format!("unknown probe {export:?}"))),
        };
        self.reply(reply, result);
    }

    fn kill_container(&mut self, cid: ContainerId) {
        self.containers.remove(&cid);
    }

    fn define_globals(&mut self, _globals: &[GlobalDef]) -> Result<(), ErrorData> {
        Ok(())
    }

    fn host_call_settled(&mut self, _id: u64, _result: Result<Value, ErrorData>) {}

    fn run_pending(&mut self, _now: Instant) -> Option<Instant> {
        None
    }

    fn is_idle(&self, _cid: ContainerId) -> bool {
        true
    }
}

fn main() {
    confine_guest::serve(Probes::default())
}
