//! The ceiling on an async runtime: the raw session of [`super::ceiling`], but each task drives
//! its own tokio socket (write, then read until its reply) on the same runtime as edbx. No
//! pool, no queue, no driver task. The distance between this and the blocking ceiling is what
//! the runtime costs; the distance between edbx and this is what edbx's engine costs.

use std::sync::Arc;

use edbx_instr::raw::{Conn, Session, open_reply, seal_request};
use edbx_wire::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::Env;
use super::ceiling::{apply_request, check_applied, check_got, get_request};
use crate::stats::Run;
use crate::workload::{Workload, apply_id, drive_tasks, get_id};

struct AsyncConn {
    stream: TcpStream,
    session: Session,
    buf: Box<[u8]>,
}

impl AsyncConn {
    fn open(env: &Env<'_>) -> Result<Self, String> {
        let target = env.target;
        let (stream, session) =
            Conn::open(&target.host, target.port, &target.token, &target.tenant)?.into_parts();
        stream
            .set_nonblocking(true)
            .map_err(|e| format!("non-blocking: {e}"))?;
        let _guard = env.runtime.enter();
        let stream = TcpStream::from_std(stream).map_err(|e| format!("tokio socket: {e}"))?;
        Ok(Self {
            stream,
            session,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
        })
    }

    async fn call(&mut self, request: &Request) -> Result<Response, String> {
        let session = &mut self.session;
        let id = session.next_id;
        session.next_id += 1;
        let frame = seal_request(&mut session.noise, &session.token, id, request)?;
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let frame = loop {
            if let Some(frame) = session.decoder.next_frame().map_err(|e| e.to_string())? {
                break frame;
            }
            let _ = socket2::SockRef::from(&self.stream).set_tcp_quickack(true);
            match self.stream.read(&mut self.buf).await {
                Ok(0) => return Err("server closed the connection".to_owned()),
                Ok(n) => session.decoder.extend(&self.buf[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        };
        open_reply(&mut session.noise, &frame, id)
    }
}

async fn get(conn: Arc<Mutex<AsyncConn>>, id: String) -> Result<(), String> {
    check_got(conn.lock().await.call(&get_request(id)).await?)
}

async fn apply(conn: Arc<Mutex<AsyncConn>>, id: String, i: u64) -> Result<(), String> {
    check_applied(conn.lock().await.call(&apply_request(id, i)).await?)
}

pub fn run(env: &Env<'_>, workload: Workload, run_tag: &str) -> Result<Run, String> {
    let plan = env.plan;
    if workload == Workload::Connect {
        return super::ceiling::run(env, workload, run_tag);
    }
    let conns = (0..workload.tasks())
        .map(|_| AsyncConn::open(env).map(|c| Arc::new(Mutex::new(c))))
        .collect::<Result<Vec<_>, _>>()?;
    let plan_owned = plan.clone();
    let run_tag = run_tag.to_owned();
    Ok(match workload {
        Workload::Get { .. } => {
            env.runtime
                .block_on(drive_tasks(conns, plan, move |c, task, i| {
                    get(c, get_id(&plan_owned, task, i))
                }))
        }
        Workload::Apply { .. } => {
            env.runtime
                .block_on(drive_tasks(conns, plan, move |c, task, i| {
                    apply(c, apply_id(&plan_owned, &run_tag, task, i), i)
                }))
        }
        Workload::Connect => unreachable!("handled above"),
    })
}
