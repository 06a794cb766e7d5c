//! `--user USER[:GROUP]`: the spec, and who it names according to the text of /etc/passwd and
//! /etc/group. No NSS: the binary is static and images are often FROM scratch with only these
//! two files. Pure: `privs` reads the files (bounded) and hands their bytes here. The files
//! are untrusted input: a line that does not parse is skipped, nothing here panics, and
//! nothing read from them is ever quoted in a message.

/// The most supplementary groups the kernel accepts (NGROUPS_MAX).
pub const MAX_GROUPS: usize = 65_536;

/// The longest user or group name accepted on the command line.
const MAX_NAME: usize = 256;

/// A user or a group, as written: a name, or a number (all digits, like gosu and Docker read it).
#[derive(Debug, Clone, PartialEq)]
pub enum Id {
    Name(String),
    Num(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub user: Id,
    pub group: Option<Id>,
}

/// Who the commands run as.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub uid: u32,
    pub gid: u32,
    /// The supplementary groups (setgroups), in ascending order.
    pub groups: Vec<u32>,
    /// The passwd entry's name and home, when there is one.
    pub name: Option<String>,
    pub home: Option<Vec<u8>>,
}

/// `USER[:GROUP]`. Errors say what is wrong, for the caller to prefix with --user or REAPER_USER.
pub fn parse_spec(v: &str) -> Result<Spec, String> {
    let (user, group) = match v.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (v, None),
    };
    let user = id(user, "user")?;
    let group = group.map(|g| id(g, "group")).transpose()?;
    Ok(Spec { user, group })
}

fn id(v: &str, what: &str) -> Result<Id, String> {
    if v.is_empty() {
        return Err(format!("empty {what} (USER[:GROUP], names or numbers)"));
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        // u32::MAX is -1, which setresuid/setresgid read as "leave unchanged".
        return match v.parse::<u32>() {
            Ok(n) if n != u32::MAX => Ok(Id::Num(n)),
            _ => Err(format!("{what} id {v} is out of range (0-4294967294)")),
        };
    }
    // Control and format characters (a newline, an escape, a bidi override) name no account
    // and must not reach a message as they are.
    let shown = crate::text::printable(v.as_bytes());
    if v.len() > MAX_NAME || shown != v || v.chars().any(|c| c.is_whitespace() || c == ':' || c == ',') {
        return Err(format!("invalid {what} name '{shown}'"));
    }
    Ok(Id::Name(v.to_owned()))
}

/// One /etc/passwd line: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, PartialEq)]
struct Passwd<'a> {
    name: &'a [u8],
    uid: u32,
    gid: u32,
    home: &'a [u8],
}

/// One /etc/group line: `name:password:gid:member,member`.
#[derive(Debug, PartialEq)]
struct Group<'a> {
    name: &'a [u8],
    gid: u32,
    members: &'a [u8],
}

/// A decimal id as the files write it; -1 (u32::MAX) is not an id.
fn number(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 10 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = field.iter().try_fold(0u64, |n, &d| Some(n * 10 + u64::from(d - b'0')))?;
    u32::try_from(n).ok().filter(|&n| n != u32::MAX)
}

/// The entries of a file whose lines are `:`-separated fields; lines that are empty, comments
/// or NIS markers (`+`, `-`) never match a name.
fn lines(file: &[u8]) -> impl Iterator<Item = Vec<&[u8]>> {
    file.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !matches!(l[0], b'#' | b'+' | b'-'))
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).split(|&b| b == b':').collect())
}

fn passwd(file: &[u8]) -> impl Iterator<Item = Passwd<'_>> {
    lines(file).filter_map(|f| {
        if f.len() < 6 || f[0].is_empty() {
            return None;
        }
        Some(Passwd { name: f[0], uid: number(f[2])?, gid: number(f[3])?, home: f[5] })
    })
}

fn group(file: &[u8]) -> impl Iterator<Item = Group<'_>> {
    lines(file).filter_map(|f| {
        if f.len() < 3 || f[0].is_empty() {
            return None;
        }
        Some(Group { name: f[0], gid: number(f[2])?, members: f.get(3).copied().unwrap_or_default() })
    })
}

/// The home directory of `uid` according to `passwd_file`, if it has an entry.
pub fn home_of(uid: u32, passwd_file: &[u8]) -> Option<Vec<u8>> {
    passwd(passwd_file).find(|p| p.uid == uid).map(|p| p.home.to_vec())
}

/// Resolves `spec`. Without GROUP, the gid is the passwd entry's (the same number as the uid
/// when a numeric uid has no entry: never the caller's gid 0), and the supplementary groups
/// are those initgroups(3) gives: that gid and every group listing the user's name. With
/// GROUP: that gid alone, no supplementary groups (as gosu and Docker's `--user u:g`).
/// Errors: a name that is not in the file (for the caller to prefix).
pub fn resolve(spec: &Spec, passwd_file: &[u8], group_file: &[u8]) -> Result<Target, String> {
    let (uid, entry) = match &spec.user {
        Id::Name(n) => {
            let p = passwd(passwd_file)
                .find(|p| p.name == n.as_bytes())
                .ok_or_else(|| format!("no user '{n}' in /etc/passwd"))?;
            (p.uid, Some(p))
        }
        Id::Num(uid) => (*uid, passwd(passwd_file).find(|p| p.uid == *uid)),
    };
    let name = entry.as_ref().map(|p| String::from_utf8_lossy(p.name).into_owned());
    let home = entry.as_ref().map(|p| p.home.to_vec());
    let (gid, groups) = match &spec.group {
        Some(Id::Num(gid)) => (*gid, Vec::new()),
        Some(Id::Name(g)) => {
            let gid = group(group_file)
                .find(|e| e.name == g.as_bytes())
                .map(|e| e.gid)
                .ok_or_else(|| format!("no group '{g}' in /etc/group"))?;
            (gid, Vec::new())
        }
        None => match &entry {
            Some(p) => (p.gid, member_of(p.name, p.gid, group_file)?),
            None => (uid, Vec::new()),
        },
    };
    Ok(Target { uid, gid, groups, name, home })
}

/// `primary` and every group that lists `name` as a member, each once, in ascending order
/// (as the kernel keeps them). Sorted rather than checked one by one: a file listing the user
/// in tens of thousands of groups must not cost PID 1 a quadratic scan.
fn member_of(name: &[u8], primary: u32, group_file: &[u8]) -> Result<Vec<u32>, String> {
    let mut groups = vec![primary];
    groups.extend(
        group(group_file).filter(|g| g.members.split(|&b| b == b',').any(|m| m == name)).map(|g| g.gid),
    );
    // BinaryHeap's heapsort: sort_unstable costs 2 KB of binary per type.
    let mut groups = std::collections::BinaryHeap::from(groups).into_sorted_vec();
    groups.dedup();
    if groups.len() > MAX_GROUPS {
        return Err(format!("more than {MAX_GROUPS} groups in /etc/group for this user"));
    }
    Ok(groups)
}

/// The environment changes for the commands: `HOME` becomes the target's home ("/" without
/// one) when it is unset, empty, or the invoking user's own home (Docker sets HOME=/root in
/// every container; handing that to the new user is gosu's trap); an explicit other HOME stays.
/// `USER` and `LOGNAME` name the target, or are removed when it has no passwd entry (they
/// would name someone else). `None` as a value: remove the variable.
pub fn environment(
    target: &Target,
    home_now: Option<&[u8]>,
    invoker_home: Option<&[u8]>,
) -> Vec<(&'static str, Option<Vec<u8>>)> {
    let mut changes = Vec::new();
    let replace = match home_now {
        None | Some(b"") => true,
        Some(h) => Some(h) == invoker_home,
    };
    if replace {
        let home = target.home.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| b"/".to_vec());
        changes.push(("HOME", Some(home)));
    }
    let name = target.name.as_ref().map(|n| n.as_bytes().to_vec());
    changes.push(("USER", name.clone()));
    changes.push(("LOGNAME", name));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
        # a comment:x:5:5::/c:\n\
        +nis:x:6:6::/n:\n\
        app:x:1000:1000:App,,,:/home/app:/bin/sh\r\n\
        \n\
        short:x:7:7\n\
        badnum:x:12a:1::/b:\n\
        minus:x:-1:1::/m:\n\
        huge:x:4294967295:1::/h:\n\
        big:x:4294967294:4294967294::/big:\n\
        nohome:x:1001:1001:::\n\
        noshell:x:1002:50:x:/srv\n\
        dup:x:1003:1003::/first:\n\
        dup:x:1004:1004::/second:\n\
        :x:1005:1005::/empty:\n\
        app2:x:1000:77::/home/app2:\n\
        last:x:2000:2000::/last:";

    const GROUP: &[u8] = b"root:x:0:\n\
        app:x:1000:\n\
        # wheel:x:10:app\n\
        wheel:x:10:root,app\n\
        audio:x:29:bob,app,carol\r\n\
        video:x:44:application,ap\n\
        bad:x:4x:app\n\
        staff:x:50:app\n\
        again:x:10:app\n\
        nomembers:x:60\n\
        :x:61:app\n\
        www-data:x:33:";

    fn spec(v: &str) -> Spec {
        parse_spec(v).unwrap()
    }

    fn resolve_str(v: &str) -> Result<Target, String> {
        resolve(&spec(v), PASSWD, GROUP)
    }

    #[test]
    fn specs_are_names_or_numbers() {
        assert_eq!(spec("app"), Spec { user: Id::Name("app".into()), group: None });
        assert_eq!(spec("1000"), Spec { user: Id::Num(1000), group: None });
        assert_eq!(spec("0"), Spec { user: Id::Num(0), group: None });
        assert_eq!(
            spec("app:www-data"),
            Spec { user: Id::Name("app".into()), group: Some(Id::Name("www-data".into())) }
        );
        assert_eq!(spec("1000:33"), Spec { user: Id::Num(1000), group: Some(Id::Num(33)) });
        assert_eq!(spec("4294967294"), Spec { user: Id::Num(4_294_967_294), group: None });
        assert_eq!(spec("1a"), Spec { user: Id::Name("1a".into()), group: None });
        assert_eq!(spec(&"a".repeat(256)).user, Id::Name("a".repeat(256)));
    }

    #[test]
    fn malformed_specs_say_why() {
        let err = |v: &str| parse_spec(v).unwrap_err();
        assert_eq!(err(""), "empty user (USER[:GROUP], names or numbers)");
        assert_eq!(err(":x"), "empty user (USER[:GROUP], names or numbers)");
        assert_eq!(err("app:"), "empty group (USER[:GROUP], names or numbers)");
        assert_eq!(err("app:a:b"), "invalid group name 'a:b'");
        assert_eq!(err("4294967295"), "user id 4294967295 is out of range (0-4294967294)");
        assert_eq!(err("1:99999999999"), "group id 99999999999 is out of range (0-4294967294)");
        assert_eq!(err("a b"), "invalid user name 'a b'");
        assert_eq!(err("a\nb"), "invalid user name 'a?b'");
        assert_eq!(err("a\u{202e}b"), "invalid user name 'a?b'");
        assert_eq!(err("a\tb"), "invalid user name 'a?b'");
        assert_eq!(err("a,b"), "invalid user name 'a,b'");
        assert_eq!(err("a\u{85}"), "invalid user name 'a?'");
        assert_eq!(err("a\u{a0}"), "invalid user name 'a\u{a0}'");
        assert_eq!(err(&"a".repeat(257)), format!("invalid user name '{}'", "a".repeat(257)));
    }

    #[test]
    fn numbers_are_decimal_ids_below_minus_one() {
        assert_eq!(number(b"0"), Some(0));
        assert_eq!(number(b"1000"), Some(1000));
        assert_eq!(number(b"4294967294"), Some(4_294_967_294));
        assert_eq!(number(b"0004294967"), Some(4_294_967));
        for bad in [
            &b""[..],
            b"4294967295",
            b"4294967296",
            b"99999999999",
            b"-1",
            b"+1",
            b" 1",
            b"1a",
            b"12345678901",
        ] {
            assert_eq!(number(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_name_takes_its_entry_and_initgroups_groups() {
        let t = resolve_str("app").unwrap();
        assert_eq!(
            t,
            Target {
                uid: 1000,
                gid: 1000,
                groups: vec![10, 29, 50, 1000],
                name: Some("app".into()),
                home: Some(b"/home/app".to_vec()),
            }
        );
        let root = resolve_str("root").unwrap();
        assert_eq!((root.uid, root.gid, root.groups), (0, 0, vec![0, 10]));
        // The first of duplicate entries wins, as getpwnam's scan.
        assert_eq!(resolve_str("dup").unwrap().home, Some(b"/first".to_vec()));
        assert_eq!(resolve_str("noshell").unwrap().groups, [50]);
        assert_eq!(resolve_str("last").unwrap().uid, 2000);
        let big = resolve_str("big").unwrap();
        assert_eq!((big.uid, big.gid), (4_294_967_294, 4_294_967_294));
    }

    #[test]
    fn unknown_and_unparsable_names_are_errors() {
        for name in ["nobody", "short", "badnum", "minus", "huge", "# a comment", "+nis", "App", "ap"] {
            assert_eq!(
                resolve(&Spec { user: Id::Name(name.into()), group: None }, PASSWD, GROUP),
                Err(format!("no user '{name}' in /etc/passwd"))
            );
        }
        assert_eq!(resolve_str("app:nogroup"), Err("no group 'nogroup' in /etc/group".into()));
        assert_eq!(resolve_str("app:bad"), Err("no group 'bad' in /etc/group".into()));
        // A line without a member list still names its group.
        assert_eq!(resolve_str("app:nomembers").unwrap().gid, 60);
        assert_eq!(resolve(&spec("app"), b"", GROUP), Err("no user 'app' in /etc/passwd".into()));
    }

    #[test]
    fn a_number_with_an_entry_is_that_entry() {
        let t = resolve_str("1000").unwrap();
        assert_eq!(t.name.as_deref(), Some("app"));
        assert_eq!((t.gid, t.groups), (1000, vec![10, 29, 50, 1000]));
        assert_eq!(resolve_str("0").unwrap().home, Some(b"/root".to_vec()));
    }

    #[test]
    fn a_number_without_an_entry_gets_the_same_gid_and_no_groups() {
        let t = resolve_str("4242").unwrap();
        assert_eq!(t, Target { uid: 4242, gid: 4242, groups: vec![], name: None, home: None });
        // Lines whose uid field does not parse are not entries for any number.
        assert_eq!(resolve_str("12").unwrap().name, None);
        assert_eq!(resolve_str("7").unwrap().name, None);
        // Nor is a line without a name.
        assert_eq!(resolve_str("1005").unwrap().name, None);
        assert_eq!(resolve(&spec("0"), b"", b"").unwrap().gid, 0);
    }

    #[test]
    fn an_explicit_group_is_the_only_group() {
        let t = resolve_str("app:www-data").unwrap();
        assert_eq!((t.uid, t.gid, t.groups), (1000, 33, vec![]));
        let t = resolve_str("app:4000").unwrap();
        assert_eq!((t.gid, t.groups), (4000, vec![]));
        let t = resolve_str("4242:wheel").unwrap();
        assert_eq!((t.uid, t.gid, t.groups), (4242, 10, vec![]));
        assert_eq!(resolve_str("app:0").unwrap().gid, 0);
    }

    #[test]
    fn membership_is_an_exact_name_in_the_list() {
        // "application" and "ap" in video's list are not "app"; "app2" is in no group.
        let t = resolve_str("app2").unwrap();
        assert_eq!((t.uid, t.gid, t.groups), (1000, 77, vec![77]));
        let many: Vec<u8> = (0..MAX_GROUPS as u32)
            .flat_map(|g| format!("g{g}:x:{}:app\n", g + 100_000).into_bytes())
            .collect();
        assert_eq!(
            resolve(&spec("app"), PASSWD, &many),
            Err(format!("more than {MAX_GROUPS} groups in /etc/group for this user"))
        );
        let exactly: Vec<u8> = (0..MAX_GROUPS as u32 - 1)
            .flat_map(|g| format!("g:x:{}:app\n", g + 100_000).into_bytes())
            .collect();
        assert_eq!(resolve(&spec("app"), PASSWD, &exactly).unwrap().groups.len(), MAX_GROUPS);
    }

    #[test]
    fn garbage_files_never_panic() {
        let junk: &[&[u8]] =
            &[b"", b":", b"::::::", b"\xff\xfe:x:1:1::/:\n", b"a:x:1:1::\xff:", b"\n\n\n", b"a"];
        for file in junk {
            for v in ["a", "1", "1:a", "a:1", "\u{fffd}\u{fffd}"] {
                let _ = resolve(&spec(v), file, file);
            }
        }
        let t = resolve(&spec("1"), b"\xff:x:1:1::/h\xff:\n", b"").unwrap();
        assert_eq!(t.name.as_deref(), Some("\u{fffd}"));
        assert_eq!(t.home, Some(b"/h\xff".to_vec()));
    }

    #[test]
    fn home_of_finds_the_uid() {
        assert_eq!(home_of(0, PASSWD), Some(b"/root".to_vec()));
        assert_eq!(home_of(1003, PASSWD), Some(b"/first".to_vec()));
        assert_eq!(home_of(9, PASSWD), None);
    }

    fn env(t: &Target, now: Option<&str>, invoker: Option<&str>) -> Vec<(&'static str, Option<String>)> {
        environment(t, now.map(str::as_bytes), invoker.map(str::as_bytes))
            .into_iter()
            .map(|(k, v)| (k, v.map(|v| String::from_utf8(v).unwrap())))
            .collect()
    }

    #[test]
    fn home_is_replaced_when_it_is_the_invokers_or_missing() {
        let app = resolve_str("app").unwrap();
        let named = |home: Option<&str>| {
            let mut v = vec![("USER", Some("app".to_owned())), ("LOGNAME", Some("app".to_owned()))];
            if let Some(h) = home {
                v.insert(0, ("HOME", Some(h.to_owned())));
            }
            v
        };
        assert_eq!(env(&app, Some("/root"), Some("/root")), named(Some("/home/app")));
        assert_eq!(env(&app, None, Some("/root")), named(Some("/home/app")));
        assert_eq!(env(&app, Some(""), Some("/root")), named(Some("/home/app")));
        assert_eq!(env(&app, Some(""), None), named(Some("/home/app")));
        assert_eq!(env(&app, Some("/data"), Some("/root")), named(None));
        assert_eq!(env(&app, Some("/root"), None), named(None));
        assert_eq!(env(&app, Some("/root/"), Some("/root")), named(None));
    }

    #[test]
    fn without_an_entry_home_is_slash_and_user_is_removed() {
        let t = resolve_str("4242").unwrap();
        assert_eq!(
            env(&t, Some("/root"), Some("/root")),
            [("HOME", Some("/".to_owned())), ("USER", None), ("LOGNAME", None)]
        );
        let nohome = resolve_str("nohome").unwrap();
        assert_eq!(env(&nohome, None, None)[0], ("HOME", Some("/".to_owned())));
    }
}
