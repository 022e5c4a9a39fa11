//! The `chat` plugin: rooms whose members talk to each other.
//!
//! ```text
//! NICK ada          -> MSG you are ada
//! JOIN lobby        -> MSG joined lobby, 2 here
//! SAY hello         -> MSG said to 1        (the others get `> lobby ada: hello`)
//! WHO               -> | ada               (one line per member, then a count)
//!                      | bob
//!                      MSG 2 in lobby
//! LEAVE             -> MSG left lobby      (the others get `> lobby * ada left`)
//! ```
//!
//! It is also the example of what a plugin can do beyond answering one
//! line with one line, and `docs/writing-a-plugin.md` quotes it:
//!
//! - per-connection state ([`Member`]): each connection's nick and room,
//!   made when it connects and handed back when it closes, however it
//!   closes, so that nobody stays in a room after leaving;
//! - pushed lines: `SAY` sends to the other members through the
//!   [`Pusher`] the host gave at start;
//! - a reply of several lines: `WHO`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use plugin_api::{
    Client, Hook, HookResult, Host, NoSettings, Plugin, Pusher, Reply, Request, export_plugin,
};

/// Longest nick and room name: they are repeated in every line pushed.
const MAX_NAME: usize = 32;

pub struct Chat {
    /// Kept from start: pushing needs no request, so a connection's close
    /// can tell the others too.
    pusher: Pusher,
    /// Rooms by name, shared by every connection. One lock is enough: it is
    /// held only to read or change a room, never while pushing. (So two
    /// members talking at once may be heard in either order, differently
    /// by different members; one member's lines always keep theirs.)
    rooms: Mutex<HashMap<String, Room>>,
}

/// One connection's state in this plugin (`Plugin::State`): hooks get it
/// mutably without a lock, since calls on one connection never overlap.
#[derive(Default)]
pub struct Member {
    nick: String,
    room: Option<String>,
}

#[derive(Default)]
struct Room {
    /// Nicks by connection id, for `WHO`.
    nicks: BTreeMap<u64, String>,
    /// The members' ids, sorted, rebuilt when someone joins or leaves. Members
    /// come and go far less often than they talk, so `SAY` only clones this
    /// under the lock and pushes after letting go of it.
    ids: Arc<[u64]>,
}

impl Room {
    fn changed(&mut self) {
        self.ids = self.nicks.keys().copied().collect();
    }
}

impl Plugin for Chat {
    type Settings = NoSettings;
    type State = Member;

    fn new(_: NoSettings, host: &Host) -> Result<Self, String> {
        Ok(Chat {
            pusher: host.pusher(),
            rooms: Mutex::default(),
        })
    }

    fn hooks(&self) -> Vec<Hook<Self>> {
        vec![
            Hook::new(r"NICK (\S+)", Chat::nick)
                .usage("NICK <name>")
                .describe("sets the name others see you by"),
            Hook::new(r"JOIN (\S+)", Chat::join)
                .usage("JOIN <room>")
                .describe("enters a room, leaving the one you were in"),
            Hook::new(r"SAY (.+)", Chat::say)
                .usage("SAY <text>")
                .describe("sends a line to everyone else in your room"),
            Hook::new("LEAVE", Chat::leave)
                .usage("LEAVE")
                .describe("leaves your room"),
            Hook::new("WHO", Chat::who)
                .usage("WHO")
                .describe("lists the members of your room"),
        ]
    }

    /// Every connection starts with a nick of its own, so that `JOIN` works
    /// without `NICK` first.
    fn connected(&self, client: &Client<'_>) -> Member {
        Member {
            nick: format!("guest{}", client.id()),
            room: None,
        }
    }

    /// However the connection ended (the client left, `CLOSE`, the idle
    /// timeout, the host stopping), its member leaves its room: without
    /// this, rooms would keep ids of closed connections forever.
    fn disconnected(&self, client: &Client<'_>, member: Member) {
        if let Some(room) = &member.room {
            self.leave_room(client.id(), &member.nick, room);
        }
    }
}

impl Chat {
    fn nick(&self, req: &Request<'_>, reply: &mut Reply<'_, Member>) -> HookResult {
        let nick = checked_name(req.group(1).unwrap_or_default())?;
        let id = req.connection_id();
        let member = reply.state();
        let old = std::mem::replace(&mut member.nick, nick.to_owned());
        if let Some(room) = &member.room {
            let others = self
                .with_room(room, |r| {
                    r.nicks.insert(id, nick.to_owned());
                    Arc::clone(&r.ids)
                })
                .unwrap_or_default();
            self.push_others(&others, id, &format!("{room} * {old} is now {nick}"));
        }
        reply.line(format_args!("MSG you are {nick}"));
        Ok(())
    }

    fn join(&self, req: &Request<'_>, reply: &mut Reply<'_, Member>) -> HookResult {
        let name = checked_name(req.group(1).unwrap_or_default())?;
        let id = req.connection_id();
        let member = reply.state();
        if member.room.as_deref() == Some(name) {
            return Err(format!("already in {name}").into());
        }
        if let Some(old) = member.room.take() {
            self.leave_room(id, &member.nick, &old);
        }
        let nick = member.nick.clone();
        let others = {
            let mut rooms = self.rooms();
            let room = rooms.entry(name.to_owned()).or_default();
            room.nicks.insert(id, nick.clone());
            room.changed();
            Arc::clone(&room.ids)
        };
        member.room = Some(name.to_owned());
        self.push_others(&others, id, &format!("{name} * {nick} joined"));
        reply.line(format_args!("MSG joined {name}, {} here", others.len()));
        Ok(())
    }

    fn say(&self, req: &Request<'_>, reply: &mut Reply<'_, Member>) -> HookResult {
        let id = req.connection_id();
        let member = reply.state();
        let Some(room) = &member.room else {
            return Err("not in a room: JOIN <room> first".into());
        };
        let others = self
            .with_room(room, |r| Arc::clone(&r.ids))
            .unwrap_or_default();
        let text = req.group(1).unwrap_or_default();
        let line = format!("{room} {}: {text}", member.nick);
        let reached = self.push_others(&others, id, &line);
        reply.line(format_args!("MSG said to {reached}"));
        Ok(())
    }

    fn leave(&self, req: &Request<'_>, reply: &mut Reply<'_, Member>) -> HookResult {
        let member = reply.state();
        let Some(room) = member.room.take() else {
            return Err("not in a room".into());
        };
        self.leave_room(req.connection_id(), &member.nick, &room);
        reply.line(format_args!("MSG left {room}"));
        Ok(())
    }

    fn who(&self, _: &Request<'_>, reply: &mut Reply<'_, Member>) -> HookResult {
        let Some(room) = reply.state().room.clone() else {
            return Err("not in a room".into());
        };
        let mut nicks: Vec<String> = self
            .with_room(&room, |r| r.nicks.values().cloned().collect())
            .unwrap_or_default();
        nicks.sort_unstable();
        // One line per member, then a last line: the host marks all but the
        // last with `MSG | `, so that a client knows where the reply ends
        // without knowing `WHO`.
        for nick in &nicks {
            reply.line(nick);
        }
        reply.line(format_args!("MSG {} in {room}", nicks.len()));
        Ok(())
    }

    /// Takes connection `id` out of room `name` and tells the others. An
    /// emptied room is forgotten.
    fn leave_room(&self, id: u64, nick: &str, name: &str) {
        let others = {
            let mut rooms = self.rooms();
            let Some(room) = rooms.get_mut(name) else {
                return;
            };
            room.nicks.remove(&id);
            if room.nicks.is_empty() {
                rooms.remove(name);
                return;
            }
            room.changed();
            Arc::clone(&room.ids)
        };
        self.push_others(&others, id, &format!("{name} * {nick} left"));
    }

    /// Runs `f` on room `name` under the lock. The room is there whenever a
    /// member's state names it: a room is only forgotten once empty.
    fn with_room<T>(&self, name: &str, f: impl FnOnce(&mut Room) -> T) -> Option<T> {
        self.rooms().get_mut(name).map(f)
    }

    /// Pushes `line` to every id in `ids` but `sender`; returns how many
    /// took it. `ids` is sorted, so the sender splits it in two slices and
    /// nothing is copied.
    fn push_others(&self, ids: &[u64], sender: u64, line: &str) -> usize {
        let (before, after) = match ids.binary_search(&sender) {
            Ok(at) => (&ids[..at], &ids[at + 1..]),
            Err(_) => (ids, &[][..]),
        };
        self.pusher.push_many(before, line) + self.pusher.push_many(after, line)
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Room>> {
        // Every change to the map is complete when the lock is let go of,
        // so a panic elsewhere while holding it leaves nothing half-done.
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn checked_name(name: &str) -> Result<&str, String> {
    if name.len() > MAX_NAME {
        Err(format!("names are at most {MAX_NAME} bytes"))
    } else {
        Ok(name)
    }
}

export_plugin!(Chat);
