//! Who contributes to one name of the writer's index: instance ids with their roles.

use crate::records::Roles;

/// The contributors of one name, sorted by id: most names have exactly one, kept inline; a
/// name with more keeps them in a list of [`Lists`] (8 bytes either way: two million names
/// at a million instances).
#[derive(Debug, Default, Clone, Copy)]
pub(super) enum Contributors {
    #[default]
    None,
    One(u32, Roles),
    /// Index of the list in [`Lists`].
    Many(u32),
}

/// The contributor lists of the names that have more than one, by index (freed lists are
/// reused).
#[derive(Debug, Default)]
pub(super) struct Lists {
    lists: Vec<Vec<(u32, Roles)>>,
    free: Vec<u32>,
}

impl Lists {
    fn add(&mut self, list: Vec<(u32, Roles)>) -> u32 {
        match self.free.pop() {
            Some(at) => {
                self.lists[at as usize] = list;
                at
            }
            None => {
                self.lists.push(list);
                (self.lists.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, at: u32) {
        if let Some(list) = self.lists.get_mut(at as usize) {
            *list = Vec::new();
            self.free.push(at);
        }
    }

    fn get(&self, at: u32) -> &[(u32, Roles)] {
        self.lists.get(at as usize).map_or(&[], Vec::as_slice)
    }
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

    pub(super) fn insert(&mut self, lists: &mut Lists, id: u32, roles: Roles) {
        match *self {
            Contributors::None => *self = Contributors::One(id, roles),
            Contributors::One(one, _) if one == id => *self = Contributors::One(id, roles),
            Contributors::One(one, r) => {
                let mut all = vec![(one, r), (id, roles)];
                all.sort_by_key(|(c, _)| *c);
                *self = Contributors::Many(lists.add(all));
            }
            // Ids mostly grow, so this is usually an append.
            Contributors::Many(at) => {
                let Some(all) = lists.lists.get_mut(at as usize) else {
                    return;
                };
                match all.binary_search_by_key(&id, |(c, _)| *c) {
                    Ok(found) => all[found].1 = roles,
                    Err(found) => all.insert(found, (id, roles)),
                }
            }
        }
    }

    pub(super) fn remove(&mut self, lists: &mut Lists, id: u32) {
        match *self {
            Contributors::One(one, _) if one == id => *self = Contributors::None,
            Contributors::Many(at) => {
                let Some(all) = lists.lists.get_mut(at as usize) else {
                    return;
                };
                if let Ok(found) = all.binary_search_by_key(&id, |(c, _)| *c) {
                    all.remove(found);
                }
                match all.as_slice() {
                    [] => {
                        *self = Contributors::None;
                        lists.release(at);
                    }
                    &[(one, roles)] => {
                        *self = Contributors::One(one, roles);
                        lists.release(at);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Every contributor (`lists`: the index's lists), by id.
    pub(super) fn iter<'a>(&self, lists: &'a Lists) -> impl Iterator<Item = (u32, Roles)> + 'a {
        let one = match self {
            Contributors::One(id, roles) => Some((*id, *roles)),
            _ => None,
        };
        let many = match self {
            Contributors::Many(at) => lists.get(*at),
            _ => &[],
        };
        one.into_iter().chain(many.iter().copied())
    }
}
