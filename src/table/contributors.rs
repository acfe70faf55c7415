//! Who contributes to one name of the writer's index: instance ids with their roles.

use crate::records::Roles;

/// The contributors of one name, sorted by id: most names have exactly one, kept inline
/// (16 bytes).
#[derive(Debug, Default)]
pub(super) enum Contributors {
    #[default]
    None,
    One(u32, Roles),
    // Boxed so that the common single-contributor case keeps the entry at 32 bytes.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<(u32, Roles)>>),
}

impl Contributors {
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Contributors::None)
    }

    /// The one contributor, when there is exactly one.
    pub(super) fn single(&self) -> Option<(u32, Roles)> {
        match self {
            Contributors::One(id, roles) => Some((*id, *roles)),
            _ => None,
        }
    }

    pub(super) fn insert(&mut self, id: u32, roles: Roles) {
        match self {
            Contributors::None => *self = Contributors::One(id, roles),
            Contributors::One(one, r) if *one == id => *r = roles,
            Contributors::One(one, r) => {
                let mut all = vec![(*one, *r), (id, roles)];
                all.sort_by_key(|(c, _)| *c);
                *self = Contributors::Many(Box::new(all));
            }
            // Ids mostly grow, so this is usually an append.
            Contributors::Many(all) => match all.binary_search_by_key(&id, |(c, _)| *c) {
                Ok(at) => all[at].1 = roles,
                Err(at) => all.insert(at, (id, roles)),
            },
        }
    }

    pub(super) fn remove(&mut self, id: u32) {
        match self {
            Contributors::One(one, _) if *one == id => *self = Contributors::None,
            Contributors::Many(all) => {
                if let Ok(at) = all.binary_search_by_key(&id, |(c, _)| *c) {
                    all.remove(at);
                }
                match all.as_slice() {
                    [] => *self = Contributors::None,
                    &[(one, roles)] => *self = Contributors::One(one, roles),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, Roles)> + '_ {
        let one = match self {
            Contributors::One(id, roles) => Some((*id, *roles)),
            _ => None,
        };
        let many = match self {
            Contributors::Many(all) => all.as_slice(),
            _ => &[],
        };
        one.into_iter().chain(many.iter().copied())
    }
}
